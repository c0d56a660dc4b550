"""The Hugging Face Hub as a checkpoint hub (``hf://owner/repo``).

Built on the public API of ``huggingface_hub`` 2.x. The repository is
created private on the first commit. Each commit is one ``create_commit``
naming ``parent_commit``, so the Hub answers HTTP 412 when another machine
committed in between (:class:`HubConflict`, nothing written). Binary and
large files travel as the Hub decides (Xet, or the LFS batch API with Xet
off) and are served by a redirect to a storage host; small text files go
inline. Downloads go through ``hf_hub_download`` into the normal HF cache,
pinned to a commit id; the cached blob is named after the ETag the Hub
reported (sha256 for LFS files, the git blob sha1 for small ones), and the
file is checked against it on every download, so a corrupt cache entry or a
bad transfer is refused.

Failures: :mod:`l4demons.hub.hf_errors` says what each means (a failed
transfer of any kind, a 429 or a 5xx is "unavailable"), :mod:`.retry` how
calls are retried (bounded back-off honouring ``Retry-After``).

Offline restarts: the files of every commit this machine makes are put in
the HF cache as that commit's snapshot (:mod:`.hf_cache`), and the cache's
``refs/main`` follows the newest commit this machine made or downloaded
from. When the Hub cannot be reached, ``download(name)`` (no revision) falls
back to that commit and logs one ``[HF] hub unreachable`` warning; a pinned
``download(name, commit)`` of a cached file never needs the network.

Commit messages: the first line is the Hub's commit title, the rest its
description; :meth:`HFHub.history` joins them again, so ``CommitInfo.message``
is the whole message on every backend.

A repository that does not exist yet reads as an empty hub (``head()`` is
None), since the first commit creates it; asking it for a named revision
raises :class:`HubNotFound`. The commit list: :mod:`.hf_history`; verified
downloads: :mod:`.hf_download`; storage and pruning: :mod:`.hf_storage`.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import TypeVar

from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    constants,
)
from huggingface_hub.errors import EntryNotFoundError

from l4demons.hub.base import (
    CommitInfo,
    HubAuthError,
    HubConflict,
    HubError,
    HubUnavailable,
    check_local_files,
    rollback_message,
    short_id,
    validate_filename,
)
from l4demons.hub.hf_cache import RepoCache
from l4demons.hub.hf_download import HFDownloadMixin
from l4demons.hub.hf_errors import RepoMissing, Where, reason, retryable, translate
from l4demons.hub.hf_history import HFHistoryMixin
from l4demons.hub.hf_storage import HFStorageMixin
from l4demons.hub.retry import RetryPolicy, call_with_retries

logger = logging.getLogger(__name__)

T = TypeVar("T")

_AUTO_FILES = {".gitattributes"}
"""Files the Hub puts in a new repo's automatic "initial commit"."""


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """What the Hub says of one file of a commit."""

    size: int | None
    blob_id: str | None
    """The git blob id (of the pointer, for an LFS file)."""
    sha256: str | None
    """The content's sha256, for an LFS file."""


class HFHub(HFHistoryMixin, HFDownloadMixin, HFStorageMixin):
    """A checkpoint hub in a Hugging Face model repository.

    :param uri: ``hf://owner/repo``.
    :param token: a Hugging Face token; default ``HF_TOKEN`` or the saved login.
    :param endpoint: the Hub's URL; default ``HF_ENDPOINT`` or huggingface.co.
    :param cache_dir: the HF cache folder; default the usual one (``HF_HUB_CACHE``).
    :param retries: attempts for calls that fail on the network, in a transfer or with HTTP 5xx/429
        (default ``L4D_HF_RETRIES`` or 4).
    :param retry_delay: seconds before the first retry; doubles each time (capped at 30), unless the
        Hub says how long to wait (default ``L4D_HF_RETRY_DELAY`` or 1).
    :param retry_budget: most seconds one call waits between its tries; a longer wait asked by the Hub
        gives up at once (default ``L4D_HF_RETRY_BUDGET`` or 300).
    :param sleep: waits between the tries of a call (default :func:`time.sleep`; a test passes a fake clock's).
    :raises HubError: ``uri`` is not ``hf://owner/repo``, or a retry variable is not a number.
    """

    def __init__(
        self,
        uri: str,
        token: str | None = None,
        *,
        endpoint: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        retries: int | None = None,
        retry_delay: float | None = None,
        retry_budget: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        repo_id = uri.removeprefix("hf://").strip("/")
        if not uri.startswith("hf://") or repo_id.count("/") != 1 or "" in repo_id.split("/"):
            raise HubError(f"Hub URI {uri!r} is not of the form hf://owner/repo.")
        self.uri = f"hf://{repo_id}"
        self.repo_id = repo_id
        """``owner/repo`` on the Hub."""
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
        self.cache_dir = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE)
        self.retry = RetryPolicy.from_env(retries, retry_delay, retry_budget)
        """How each call is retried."""
        self.sleep = sleep
        """Waits between the tries of a call."""
        self._token = token
        self._api = HfApi(endpoint=self.endpoint, token=token, library_name="l4demons")
        self._where = Where(self.uri, repo_id, self.endpoint, token)
        self._known_head: str | None = None
        self._files_of: dict[str, dict[str, RemoteFile]] = {}  # commit id -> its files (a commit never changes)
        self._cache = RepoCache(self.cache_dir / ("models--" + repo_id.replace("/", "--")))

    def __repr__(self) -> str:
        return f"HFHub({self.uri!r})"

    # -- reading ------------------------------------------------------------

    def head(self) -> str | None:
        """The newest commit id on ``main``, or None when the repository does not exist yet."""
        try:
            info = self._call("read the head", lambda: self._api.model_info(self.repo_id))
        except RepoMissing:
            return None
        self._known_head = info.sha
        return info.sha

    def list_files(self, revision: str | None = None) -> list[str]:
        """File names of a commit (default head), ``.gitattributes`` included; empty if no repo."""
        try:
            return sorted(self._files(revision))
        except RepoMissing:
            if revision is None:
                return []
            raise

    def download(self, filename: str, revision: str | None = None) -> Path | None:
        """A verified copy of ``filename`` at ``revision`` (default head), in the HF cache.

        Returns None when the file is not in that commit or the hub is empty.
        With no revision and the Hub unreachable, uses the newest commit this
        machine downloaded from, if cached, and logs a warning.

        :raises HubNotFound: the revision (or, for a named revision, the repo) does not exist.
        :raises CorruptFile: the file does not match the hash the Hub reported.
        :raises HubUnavailable: the Hub cannot be reached and nothing usable is cached.
        """
        validate_filename(filename)
        offline = False
        if revision is None:
            try:
                revision = self.head()
            except HubUnavailable as err:
                revision = self._cache.head()
                if revision is None:
                    raise HubUnavailable(f"{err} No copy of {filename} from {self.uri} is cached either.") from err
                offline = True
                logger.warning(
                    "[HF] hub unreachable, using cached %s from commit %s (%s)", filename, short_id(revision), err
                )
            if revision is None:
                return None
        path = self._fetch(filename, revision, offline)
        if path is not None and not offline and revision == self._known_head:
            self._cache.remember_head(revision)
        return path

    def cached_head(self) -> str | None:
        """The newest commit this machine made or downloaded from: where an offline start begins."""
        return self._cache.head()

    # -- writing ------------------------------------------------------------

    def commit(
        self, files: dict[str, Path], message: str, parent: str | None, delete: Collection[str] = ()
    ) -> CommitInfo:
        """One Hub commit holding ``files`` on top of ``parent``; other files carry over, bar ``delete``.

        ``parent=None`` means "the hub is empty": the repository is created
        (private) if missing, and its automatic initial commit (only
        ``.gitattributes``) becomes the parent.

        :raises HubConflict: the head is no longer ``parent`` (HTTP 412); nothing was written.
        :raises HubAuthError: the token is missing, invalid or read-only.
        :raises HubUnavailable: the Hub cannot be reached after retries, or a transfer kept failing.
        """
        sources = check_local_files(files)
        parent, base = self._prepare_parent(parent)
        deletions = sorted(set(delete) & set(base) - set(sources))
        names = (set(base) - set(deletions)) | set(sources)

        def operations() -> list:
            adds = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(src)) for name, src in sources.items()]
            return adds + [CommitOperationDelete(path_in_repo=name) for name in deletions]

        info = self._create_commit(operations, message, parent)
        made = self._commit_info(info.id) if info.id != parent else None
        if made is None or made.parent != parent or made.message.strip() != message.strip():
            # The client found every file already at main's head, sent nothing and answered that head unchecked.
            return dataclasses.replace(self._nothing_new(parent), files=tuple(sorted(names)))
        if info.parent == parent and info.id != parent:  # made here (not found landed by another try)
            self._cache.add_commit(info.id, parent, sources, dropped=deletions)
        return dataclasses.replace(info, files=tuple(sorted(names)))

    def rollback(self, revision: str, parent: str | None = None) -> CommitInfo:
        """A new commit whose files are exactly those of ``revision`` (history is kept).

        :param parent: the head this rollback is made on; default the current head.
        :raises HubNotFound: the revision does not exist.
        :raises HubConflict: the head moved away from ``parent``.
        """
        target = self._commit_info(self._resolve(revision))
        target_files = self.list_files(target.id)
        if parent is None:
            parent = self.head()
        current = set(self.list_files(parent)) if parent is not None else set()
        message = rollback_message(target.id, target.message)
        deletions = [CommitOperationDelete(path_in_repo=name) for name in sorted(current - set(target_files))]

        def copies() -> list:
            # Server-side copies: LFS files are not transferred, small ones are re-sent by the client.
            ops = [
                CommitOperationCopy(src_path_in_repo=n, path_in_repo=n, src_revision=target.id) for n in target_files
            ]
            return ops + list(deletions)

        try:
            info = self._create_commit(copies, message, parent)
        except (NotImplementedError, ValueError, EntryNotFoundError) as err:
            if isinstance(err, HubError):
                raise
            logger.warning("[HF] server-side copy failed (%s); re-uploading the files of %s", err, short_id(target.id))
            local = {n: self._fetch(n, target.id, offline=False) for n in target_files}

            def uploads() -> list:
                adds = [CommitOperationAdd(path_in_repo=n, path_or_fileobj=str(p)) for n, p in local.items() if p]
                return adds + [CommitOperationDelete(path_in_repo=d.path_in_repo) for d in deletions]

            info = self._create_commit(uploads, message, parent)
        return dataclasses.replace(info, files=tuple(sorted(target_files)))

    # -- commit machinery ---------------------------------------------------

    def _files(self, revision: str | None) -> dict[str, RemoteFile]:
        """The files of a commit (default head) with sizes and hashes; cached per commit id."""
        if revision is not None and revision in self._files_of:
            return self._files_of[revision]
        info = self._call(
            "list files", lambda: self._api.model_info(self.repo_id, revision=revision, files_metadata=True)
        )
        files = {
            s.rfilename: RemoteFile(s.size, s.blob_id, s.lfs.sha256 if s.lfs else None) for s in info.siblings or []
        }
        if info.sha:
            if len(self._files_of) > 64:
                self._files_of.clear()
            self._files_of[info.sha] = files
        return files

    def _prepare_parent(self, parent: str | None) -> tuple[str | None, dict[str, RemoteFile]]:
        """The parent to send and its files; creates the repo when ``parent`` is None."""
        if parent is not None:
            return parent, self._files(parent)
        head = self.head()
        if head is None:
            logger.info("[HF] creating private repository %s", self.repo_id)
            try:
                self._call(
                    "create the repository", lambda: self._api.create_repo(self.repo_id, private=True, exist_ok=True)
                )
            except RepoMissing as err:
                raise HubAuthError(
                    f"Cannot create {self.uri}: the Hub refused. Set HF_TOKEN (or run `hf auth login`) to a token "
                    f"with write access to the namespace {self.repo_id.split('/')[0]}."
                ) from err
            head = self.head()
            if head is None:  # a repo with no commit at all: nothing to build on
                return None, {}
        files = self._files(head)
        if set(files) - _AUTO_FILES:
            raise HubConflict(
                f"{self.uri} is not empty (head {short_id(head)}): this commit assumed an empty hub. "
                "Pull the head, merge and retry.",
                head=head,
            )
        return head, files

    def _create_commit(self, make_operations: Callable[[], list], message: str, parent: str | None) -> CommitInfo:
        """``create_commit`` with retries; HubConflict on 412, unless a lost answer hid our own landed commit."""
        attempts = 0
        # The Hub keeps a commit's first line as its title and the rest as its description.
        title, _, description = message.partition("\n")

        def send():
            nonlocal attempts
            attempts += 1
            return self._api.create_commit(
                self.repo_id,
                make_operations(),  # fresh objects: the client mutates them
                commit_message=title,
                commit_description=description.strip("\n") or None,
                parent_commit=parent,
            )

        try:
            result = self._call("upload a commit", send)
        except HubConflict:
            if attempts > 1 and (landed := self._landed(message, parent)) is not None:
                logger.info("[HF] commit %s had landed before its answer was lost", short_id(landed.id))
                return landed
            raise
        logger.info("[HF] uploaded commit %s: %s", short_id(result.oid), title)
        return CommitInfo(id=result.oid, message=message, parent=parent, created_at=time.time())

    def _landed(self, message: str, parent: str | None) -> CommitInfo | None:
        """The head, if it is this very commit (sent, but its answer was lost)."""
        try:
            newest = self._commits("main", 1)
        except HubError:
            return None
        if newest and newest[0].message.strip() == message.strip() and newest[0].parent == parent:
            return newest[0]
        return None

    def _nothing_new(self, parent: str | None) -> CommitInfo:
        """The answer to a commit that changes nothing: the parent, if it still is the head."""
        head = self.head()
        if parent is not None and head != parent:
            raise HubConflict(self._conflict_message(parent, head), head=head)
        logger.info("[HF] nothing changed since %s; no new commit", short_id(parent or ""))
        return self._commit_info(parent or "main")

    def _conflict_message(self, parent: str | None, head: str | None) -> str:
        return (
            f"{self.uri} moved: its head is {short_id(head) if head else 'empty'}, this commit started from "
            f"{short_id(parent) if parent else 'an empty hub'}. Pull the new head, merge and retry."
        )

    # -- errors and retries -------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn`` under the retry policy, our exceptions for the client's (see :mod:`.hf_errors`)."""
        try:
            return call_with_retries(what, fn, self.retry, lambda e: translate(e, what, self._where), retryable, reason,
                                     sleep=self.sleep)
        except HubConflict as err:
            if err.head is None:
                err.head = self._head_or_none()
            raise

    def _head_or_none(self) -> str | None:
        try:
            return self.head()
        except HubError:
            return None
