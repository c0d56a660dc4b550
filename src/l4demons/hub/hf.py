"""The Hugging Face Hub as a checkpoint hub (``hf://owner/repo``).

Built on ``huggingface_hub`` 2.x. The repository is created private on the
first commit. Each commit is one ``create_commit`` naming ``parent_commit``,
so the Hub answers HTTP 412 when another machine committed in between
(:class:`HubConflict`, nothing written). Downloads go through
``hf_hub_download`` into the normal HF cache, pinned to a commit id; the
cached blob is named after the ETag the Hub reported (sha256 for LFS files,
the git blob sha1 for small ones), and the file is checked against it on
every download, so a corrupt cache entry or a bad transfer is refused.

Offline restarts: the files of every commit this machine makes are put in
the HF cache as that commit's snapshot (as if downloaded; only the newest
two of a run are kept), and the cache's
``refs/main`` follows the newest commit this machine made or downloaded
from. When the Hub cannot be reached, ``download(name)`` (no revision) falls
back to that commit and logs one ``[HF] hub unreachable`` warning; a pinned
``download(name, commit)`` of a cached file never needs the network.

Commit messages: the first line is the Hub's commit title, the rest its
description; :meth:`HFHub.history` joins them again, so ``CommitInfo.message``
is the whole message on every backend.

Retries: ``L4D_HF_RETRIES`` and ``L4D_HF_RETRY_DELAY`` (seconds) set the
defaults of ``retries`` and ``retry_delay`` (tests make the backoff short).

A repository that does not exist yet reads as an empty hub (``head()`` is
None), since the first commit creates it; asking it for a named revision
raises :class:`HubNotFound`.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import logging
import os
import re
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TypeVar

import httpx2
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationCopy,
    CommitOperationDelete,
    HfApi,
    constants,
    get_hf_file_metadata,
    get_token,
    hf_hub_download,
    hf_hub_url,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from l4demons.hub.base import (
    CommitInfo,
    CorruptFile,
    HubAuthError,
    HubConflict,
    HubError,
    HubNotFound,
    HubUnavailable,
    check_local_files,
    rollback_message,
    sha256_file,
    short_id,
    validate_filename,
)
from l4demons.hub.hf_cache import RepoCache

logger = logging.getLogger(__name__)

T = TypeVar("T")

_RETRY_STATUS = (408, 429, 500, 502, 503, 504)
_SHA1 = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]{4,40}")
_CHUNK = 1 << 20
_MAX_DELAY = 30.0
_AUTO_FILES = {".gitattributes"}
"""Files the Hub puts in a new repo's automatic "initial commit"."""


class _RepoMissing(HubNotFound):
    """The repository does not exist (or this token cannot see it)."""


class HFHub:
    """A checkpoint hub in a Hugging Face model repository.

    :param uri: ``hf://owner/repo``.
    :param token: a Hugging Face token; default ``HF_TOKEN`` or the saved login.
    :param endpoint: the Hub's URL; default ``HF_ENDPOINT`` or huggingface.co.
    :param cache_dir: the HF cache folder; default the usual one (``HF_HUB_CACHE``).
    :param retries: attempts for calls that fail on the network or with HTTP 5xx/429
        (default ``L4D_HF_RETRIES`` or 4).
    :param retry_delay: seconds before the first retry; doubles each time (capped at 30)
        (default ``L4D_HF_RETRY_DELAY`` or 1).
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
    ) -> None:
        repo_id = uri.removeprefix("hf://").strip("/")
        if not uri.startswith("hf://") or repo_id.count("/") != 1 or "" in repo_id.split("/"):
            raise HubError(f"Hub URI {uri!r} is not of the form hf://owner/repo.")
        self.uri = f"hf://{repo_id}"
        self.repo_id = repo_id
        """``owner/repo`` on the Hub."""
        self.endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
        self.cache_dir = Path(cache_dir if cache_dir is not None else constants.HF_HUB_CACHE)
        self.retries = max(1, retries if retries is not None else int(_env_number("L4D_HF_RETRIES", 4)))
        self.retry_delay = retry_delay if retry_delay is not None else _env_number("L4D_HF_RETRY_DELAY", 1.0)
        self._token = token
        self._api = HfApi(endpoint=self.endpoint, token=token, library_name="l4demons")
        self._known_head: str | None = None
        self._cache = RepoCache(self.cache_dir / repo_folder_name(repo_id=repo_id, repo_type="model"))

    def __repr__(self) -> str:
        return f"HFHub({self.uri!r})"

    # -- reading ------------------------------------------------------------

    def head(self) -> str | None:
        """The newest commit id on ``main``, or None when the repository does not exist yet."""
        try:
            info = self._call("read the head", lambda: self._api.model_info(self.repo_id))
        except _RepoMissing:
            return None
        self._known_head = info.sha
        return info.sha

    def list_files(self, revision: str | None = None) -> list[str]:
        """File names of a commit (default head), ``.gitattributes`` included; empty if no repo."""
        try:
            info = self._call("list files", lambda: self._api.model_info(self.repo_id, revision=revision))
        except _RepoMissing:
            if revision is None:
                return []
            raise
        return sorted(s.rfilename for s in info.siblings or [])

    def history(self, limit: int | None = None) -> list[CommitInfo]:
        """Commits of ``main``, newest first (``files`` left empty: one request per commit otherwise)."""
        try:
            return self._commits("main", limit)
        except _RepoMissing:
            return []

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

    # -- writing ------------------------------------------------------------

    def commit(self, files: dict[str, Path], message: str, parent: str | None) -> CommitInfo:
        """One Hub commit holding ``files`` on top of ``parent``; other files carry over.

        ``parent=None`` means "the hub is empty": the repository is created
        (private) if missing, and its automatic initial commit (only
        ``.gitattributes``) becomes the parent.

        :raises HubConflict: the head is no longer ``parent`` (HTTP 412); nothing was written.
        :raises HubAuthError: the token is missing, invalid or read-only.
        :raises HubUnavailable: the Hub cannot be reached after retries.
        """
        sources = check_local_files(files)
        parent, base_files = self._prepare_parent(parent)

        def operations() -> list:
            return [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(src)) for name, src in sources.items()]

        info = self._create_commit(operations, message, parent)
        if info.parent == parent and info.id != parent:  # a new commit (not the client's no-op)
            self._cache.add_commit(info.id, parent, sources)
        names = set(base_files) | set(sources)
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

    def _prepare_parent(self, parent: str | None) -> tuple[str | None, list[str]]:
        """The parent to send and its files; creates the repo when ``parent`` is None."""
        if parent is not None:
            return parent, self.list_files(parent)
        head = self.head()
        if head is None:
            logger.info("[HF] creating private repository %s", self.repo_id)
            try:
                self._call(
                    "create the repository", lambda: self._api.create_repo(self.repo_id, private=True, exist_ok=True)
                )
            except _RepoMissing as err:
                raise HubAuthError(
                    f"Cannot create {self.uri}: the Hub refused. Set HF_TOKEN (or run `hf auth login`) to a token "
                    f"with write access to the namespace {self.repo_id.split('/')[0]}."
                ) from err
            head = self.head()
            if head is None:  # a repo with no commit at all: nothing to build on
                return None, []
        files = self.list_files(head)
        if set(files) - _AUTO_FILES:
            raise HubConflict(
                f"{self.uri} is not empty (head {short_id(head)}): this commit assumed an empty hub. "
                "Pull the head, merge and retry.",
                head=head,
            )
        return head, files

    def _create_commit(self, make_operations: Callable[[], list], message: str, parent: str | None) -> CommitInfo:
        """``create_commit`` with retries; HubConflict on 412; detects the client's no-op shortcut."""
        attempts = 0
        ops: list = []
        # The Hub keeps a commit's first line as its title and the rest as its description.
        title, _, description = message.partition("\n")
        description = description.strip("\n") or None

        def send():
            nonlocal attempts, ops
            attempts += 1
            ops = make_operations()  # fresh objects: the client mutates them
            return self._api.create_commit(
                self.repo_id, ops, commit_message=title, commit_description=description, parent_commit=parent
            )

        try:
            result = self._call("upload a commit", send)
        except HubConflict as err:
            conflict = err
        else:
            if not _all_noop(ops):
                logger.info("[HF] uploaded commit %s: %s", short_id(result.oid), title)
                return CommitInfo(id=result.oid, message=message, parent=parent, created_at=time.time())
            # Every file was unchanged, so the client sent nothing and returned main's head unchecked.
            if parent is None or result.oid == parent:
                logger.info("[HF] nothing changed since %s; no new commit", short_id(result.oid))
                return self._commit_info(result.oid)
            conflict = HubConflict(self._conflict_message(parent, result.oid), head=result.oid)
        if attempts > 1 and (landed := self._landed(message, parent)) is not None:
            logger.info("[HF] commit %s had landed before its answer was lost", short_id(landed.id))
            return landed
        raise conflict

    def _landed(self, message: str, parent: str | None) -> CommitInfo | None:
        """The head, if it is this very commit (sent, but its answer was lost)."""
        try:
            newest = self._commits("main", 1)
        except HubError:
            return None
        if newest and newest[0].message.strip() == message.strip() and newest[0].parent == parent:
            return newest[0]
        return None

    def _conflict_message(self, parent: str | None, head: str | None) -> str:
        return (
            f"{self.uri} moved: its head is {short_id(head) if head else 'empty'}, this commit started from "
            f"{short_id(parent) if parent else 'an empty hub'}. Pull the new head, merge and retry."
        )

    # -- history ------------------------------------------------------------

    def _commits(self, revision: str, limit: int | None) -> list[CommitInfo]:
        """Commits from ``revision`` back, newest first, following the Hub's pagination."""
        url: str | None = f"{self.endpoint}/api/models/{self.repo_id}/commits/{revision}"
        items: list[dict] = []
        while url is not None and (limit is None or len(items) <= limit):
            response = self._call("list commits", functools.partial(self._get, url))
            items.extend(response.json())
            url = response.links.get("next", {}).get("url")
        keep = items if limit is None else items[:limit]
        return [
            CommitInfo(
                id=item["id"],
                message=item["title"] + (f"\n\n{item['message'].strip()}" if (item.get("message") or "").strip() else ""),
                parent=items[i + 1]["id"] if i + 1 < len(items) else None,
                created_at=_timestamp(item["date"]),
            )
            for i, item in enumerate(keep)
        ]

    def _commit_info(self, revision: str) -> CommitInfo:
        try:
            found = self._commits(revision, 1)
        except _RepoMissing:
            raise
        except HubNotFound as err:
            raise HubNotFound(f"No commit {revision!r} in {self.uri}. See `l4demons history`.") from err
        if not found:
            raise HubNotFound(f"No commit {revision!r} in {self.uri}. See `l4demons history`.")
        return found[0]

    def _resolve(self, revision: str) -> str:
        """A full commit id from an id, a unique hex prefix, or a branch name."""
        if _SHA1.fullmatch(revision) or not _HEX.fullmatch(revision):
            return revision
        matches = [c.id for c in self._commits("main", None) if c.id.startswith(revision)]  # a missing repo says so
        if len(matches) != 1:
            what = "is ambiguous" if matches else "matches no commit"
            raise HubNotFound(f"Revision {revision!r} {what} in {self.uri}. See `l4demons history`.")
        return matches[0]

    def _get(self, url: str) -> httpx2.Response:
        response = get_session().get(url, headers=build_hf_headers(token=self._token, library_name="l4demons"))
        hf_raise_for_status(response)
        return response

    # -- downloads ----------------------------------------------------------

    def _fetch(self, filename: str, revision: str, offline: bool) -> Path | None:
        """Download (or find in the cache) and verify; None when the file is not in the commit."""
        problem: str | None
        for attempt in (1, 2):
            try:
                path = Path(
                    hf_hub_download(
                        self.repo_id,
                        filename,
                        revision=revision,
                        cache_dir=self.cache_dir,
                        token=self._token,
                        endpoint=self.endpoint,
                        local_files_only=offline,
                        force_download=attempt == 2,
                    )
                )
            except (RemoteEntryNotFoundError, LocalEntryNotFoundError) as err:
                if isinstance(err, RemoteEntryNotFoundError) or self._cached_absent(filename, revision):
                    return None
                raise HubUnavailable(
                    f"Cannot download {filename} of {self.uri} at {short_id(revision)}: the Hub is unreachable "
                    "and the file is not cached. Check the network and retry."
                ) from err
            except Exception as err:
                mapped = self._translate(err, f"download {filename}")
                if mapped is not None:
                    raise mapped from err
                if not isinstance(err, OSError) or "Consistency check failed" not in str(err):
                    raise
                problem = f"the download was truncated ({err})"  # size differs from what the Hub announced
            else:
                problem = self._check(path, filename, revision, offline)
                if problem is None:
                    return path
                self._evict(path)
            if offline or attempt == 2:
                raise CorruptFile(
                    f"{filename} of {self.uri} at commit {short_id(revision)} is corrupt: {problem}. "
                    "The bad copy was removed from the cache; retry, or use an earlier commit (`l4demons history`)."
                )
            logger.warning(
                "[HF] %s at %s failed verification (%s); downloading again", filename, short_id(revision), problem
            )
        raise AssertionError("unreachable")

    def _check(self, path: Path, filename: str, revision: str, offline: bool) -> str | None:
        """None if ``path`` matches the Hub's hash for it, else what is wrong."""
        real = Path(os.path.realpath(path))
        etag: str | None = real.name if real.parent.name == "blobs" else None
        size: int | None = None
        if etag is None and not offline:  # no symlinked cache (e.g. Windows): ask the Hub
            url = hf_hub_url(self.repo_id, filename, revision=revision, endpoint=self.endpoint)
            meta = self._call("read file metadata", lambda: get_hf_file_metadata(url, token=self._token))
            etag, size = meta.etag, meta.size
        actual_size = real.stat().st_size
        if size is not None and size != actual_size:
            return f"expected {size} bytes, found {actual_size}"
        if etag and _SHA256.fullmatch(etag):
            algo, actual = "sha256", sha256_file(real)[0]
        elif etag and _SHA1.fullmatch(etag):
            algo, actual = "git sha1", _git_sha1(real)
        else:
            logger.warning("[HF] cannot verify %s: the Hub reported no content hash for it", filename)
            return None
        if actual != etag:
            return f"expected {algo} {etag[:16]}..., found {actual[:16]}... ({actual_size} bytes)"
        return None

    def _evict(self, path: Path) -> None:
        """Remove a bad file from the cache: the snapshot link and the blob it points to."""
        real = Path(os.path.realpath(path))
        for p in (path, real):
            try:
                p.unlink(missing_ok=True)
            except OSError as err:
                logger.warning("[HF] could not remove bad cache entry %s: %s", p, err)

    def cached_head(self) -> str | None:
        """The newest commit this machine made or downloaded from: where an offline start begins."""
        return self._cache.head()

    def _cached_absent(self, filename: str, revision: str) -> bool:
        cached = try_to_load_from_cache(self.repo_id, filename, cache_dir=self.cache_dir, revision=revision)
        return cached is not None and not isinstance(cached, str)

    # -- errors and retries -------------------------------------------------

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run ``fn``, retrying network errors and 5xx/429 with exponential backoff; map errors."""
        for attempt in range(1, self.retries + 1):
            try:
                return fn()
            except Exception as err:
                mapped = self._translate(err, what)
                if mapped is None:
                    raise
                if not isinstance(mapped, HubUnavailable) or not _retryable(err) or attempt == self.retries:
                    if isinstance(mapped, HubConflict) and mapped.head is None:
                        mapped.head = self._head_or_none()
                    raise mapped from err
                delay = min(self.retry_delay * 2 ** (attempt - 1), _MAX_DELAY)
                logger.warning(
                    "[HF] %s failed (%s); retry %d/%d in %.1fs", what, _reason(err), attempt, self.retries - 1, delay
                )
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _head_or_none(self) -> str | None:
        try:
            return self.head()
        except HubError:
            return None

    def _translate(self, err: BaseException, what: str) -> HubError | None:
        """Our exception for a huggingface_hub/httpx2 one (None: not a Hub failure)."""
        where = f"{what} on {self.uri}"
        if isinstance(err, HubError):
            return err
        if isinstance(err, OfflineModeIsEnabled):
            return HubUnavailable(f"Cannot {where}: HF_HUB_OFFLINE is set. Unset it to reach the Hub.")
        if isinstance(err, httpx2.TransportError):
            return HubUnavailable(f"Cannot {where}: {self.endpoint} is unreachable ({_reason(err)}).")
        if isinstance(err, LocalEntryNotFoundError):
            return HubUnavailable(f"Cannot {where}: the Hub is unreachable and nothing is cached.")
        if isinstance(err, RevisionNotFoundError):
            return HubNotFound(f"Cannot {where}: revision not found. See `l4demons history`.")
        if isinstance(err, RemoteEntryNotFoundError):
            return HubNotFound(f"Cannot {where}: file not found.")
        if isinstance(err, GatedRepoError):
            return HubAuthError(f"Cannot {where}: the repository is gated; request access on the Hub.")
        if isinstance(err, RepositoryNotFoundError):
            return _RepoMissing(
                f"Cannot {where}: repository {self.repo_id} not found, or this token cannot see it. "
                "Check the name, and set HF_TOKEN (or run `hf auth login`) with a token that can read it."
            )
        if not isinstance(err, HfHubHTTPError):
            return None
        status = err.response.status_code
        if status == 401 and not (self._token or get_token()):
            return HubAuthError(
                f"Cannot {where}: no Hugging Face token (HTTP 401). Set HF_TOKEN (or run `hf auth login`) "
                f"to a token with write access to {self.repo_id}."
            )
        if status == 401:
            return HubAuthError(
                f"Cannot {where}: the Hub rejected the token (HTTP 401). Set HF_TOKEN (or run `hf auth login`) "
                f"to a valid token with write access to {self.repo_id}."
            )
        if status == 403:
            return HubAuthError(
                f"Cannot {where}: the token lacks the access needed (HTTP 403). Use a token with write access "
                f"to {self.repo_id} (https://huggingface.co/settings/tokens) in HF_TOKEN."
            )
        if status == 404:
            return HubNotFound(f"Cannot {where}: not found (HTTP 404).")
        if status == 412:
            return HubConflict(
                f"{self.uri} moved since the parent commit (HTTP 412). Pull the new head, merge and retry."
            )
        if status in _RETRY_STATUS:
            return HubUnavailable(f"Cannot {where}: the Hub answered HTTP {status}. Retry later.")
        return HubError(f"Cannot {where}: HTTP {status}: {err.server_message or err}")


def _all_noop(ops: list) -> bool:
    """True when the client dropped every operation as unchanged, so it sent no commit.

    Reads the client's private bookkeeping (``_remote_oid``/``_local_oid``,
    ``_dest_oid``/``_src_oid``); if a future version drops it, this says False.
    """
    for op in ops:
        if isinstance(op, CommitOperationAdd):
            remote, local = getattr(op, "_remote_oid", None), getattr(op, "_local_oid", None)
        elif isinstance(op, CommitOperationCopy):
            remote, local = getattr(op, "_dest_oid", None), getattr(op, "_src_oid", None)
        else:
            return False
        if remote is None or remote != local:
            return False
    return True


def _env_number(name: str, default: float) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return float(text)
    except ValueError:
        raise HubError(f"{name}={text!r} is not a number; unset it or give seconds/attempts.") from None


def _retryable(err: BaseException) -> bool:
    if isinstance(err, OfflineModeIsEnabled):
        return False
    if isinstance(err, httpx2.TransportError):
        return True
    return isinstance(err, HfHubHTTPError) and err.response.status_code in _RETRY_STATUS


def _reason(err: BaseException) -> str:
    if isinstance(err, HfHubHTTPError):
        return f"HTTP {err.response.status_code}"
    return f"{type(err).__name__}: {err}" if str(err) else type(err).__name__


def _timestamp(date: str) -> float:
    return datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()


def _git_sha1(path: Path) -> str:
    """The git blob id of a file: sha1 of ``b"blob <size>\\0"`` + content."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
