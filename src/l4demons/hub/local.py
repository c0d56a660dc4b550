"""The local hub: a directory on this machine, the zero-set-up default.

Layout under the hub directory::

    objects/<sha256>     file contents, content-addressed, read-only
    commits/<id>.json    one record per commit (id, message, parent,
                         created_at, files: name -> {sha256, size})
    HEAD                 the id of the newest commit (text)
    lock                 flock'ed while a commit is being written
    pruned.json          sha256 of objects deleted for good (see :mod:`.local_storage`)

Crash safety: every file is written to a temporary name, fsync'ed and moved
into place with ``os.replace``; ``HEAD`` is replaced last. A process killed
at any moment (kill -9 included) leaves the hub at its last good commit plus,
at worst, unreferenced objects and temporary files, which the next commit
sweeps away. Several processes may share one hub: commits are serialized by
the lock and checked against ``parent`` under it, so a stale parent raises
:class:`HubConflict` and writes nothing.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from l4demons.hub.base import (
    CommitInfo,
    CorruptFile,
    HubConflict,
    HubError,
    HubNotFound,
    check_local_files,
    rollback_message,
    sha256_file,
    short_id,
    validate_filename,
)
from l4demons.hub.local_storage import LocalStorageMixin

logger = logging.getLogger(__name__)

_FORMAT = 1
_TMP_PREFIX = ".tmp-"
_COPY_CHUNK = 1 << 20
_MIN_PREFIX = 4


class LocalHub(LocalStorageMixin):
    """A checkpoint hub in a local directory (created on first use).

    :param path: the hub directory; created with its parents if missing.
    :raises HubError: the directory cannot be created.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        """The hub directory."""
        self.uri = str(self.path)
        if self.path.exists() and not self.path.is_dir():
            raise HubError(f"Local hub path {self.path} is a file, not a directory. Pass another --hub or L4D_HUB.")
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise HubError(
                f"Cannot create the local hub directory {self.path} ({err.strerror}). "
                "Pass a writable directory with --hub or L4D_HUB."
            ) from err

    def __repr__(self) -> str:
        return f"LocalHub({self.uri!r})"

    # -- reading ------------------------------------------------------------

    def head(self) -> str | None:
        """The newest commit id, or None when the hub holds no commit."""
        try:
            text = (self.path / "HEAD").read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        return text or None

    def list_files(self, revision: str | None = None) -> list[str]:
        """File names of a commit (default head); empty on an empty hub.

        :raises HubNotFound: the revision does not exist.
        """
        record = self._record_or_none(revision)
        return sorted(record["files"]) if record else []

    def history(self, limit: int | None = None) -> list[CommitInfo]:
        """Commits, newest first, by walking parents from HEAD."""
        out: list[CommitInfo] = []
        commit_id = self.head()
        while commit_id is not None and (limit is None or len(out) < limit):
            info = self._info(self._read_record(commit_id))
            out.append(info)
            commit_id = info.parent
        return out

    def download(self, filename: str, revision: str | None = None) -> Path | None:
        """Path of a verified copy of ``filename`` at ``revision`` (default head).

        The path points into the hub's read-only object store: read it, never
        write to it. Returns None when the file is not in that commit (or the
        hub is empty).

        :raises HubNotFound: the revision does not exist.
        :raises CorruptFile: the stored bytes do not match the commit record.
        """
        validate_filename(filename)
        record = self._record_or_none(revision)
        if record is None or filename not in record["files"]:
            return None
        entry = record["files"][filename]
        path = self.path / "objects" / entry["sha256"]
        self._verify(path, entry, filename, record["id"])
        return path

    def verify(self, revision: str | None = None) -> None:
        """Check every file of a commit (default head) against its record.

        :raises CorruptFile: a file is missing or does not match.
        """
        record = self._record_or_none(revision)
        if record is None:
            return
        for name, entry in record["files"].items():
            self._verify(self.path / "objects" / entry["sha256"], entry, name, record["id"])

    # -- writing ------------------------------------------------------------

    def commit(
        self, files: dict[str, Path], message: str, parent: str | None, delete: Collection[str] = ()
    ) -> CommitInfo:
        """Make one commit holding ``files`` on top of ``parent``; other files carry over, bar ``delete``.

        :raises HubConflict: HEAD is no longer ``parent``; nothing was written.
        :raises HubError: the hub directory is not writable.
        """
        sources = check_local_files(files)
        with self._locked():
            base = self._check_parent(parent)
            entries = {n: e for n, e in base["files"].items() if n not in delete} if base else {}
            for name, src in sources.items():
                entries[name] = self._store_object(src)
            return self._write_commit(entries, message, parent)

    def rollback(self, revision: str, parent: str | None = None) -> CommitInfo:
        """A new commit whose files are exactly those of ``revision``.

        :param parent: the head this rollback is made on; default the current head.
        :raises HubNotFound: the revision does not exist.
        :raises HubConflict: ``parent`` was given and is no longer the head.
        """
        target = self._read_record(self._resolve(revision))
        with self._locked():
            head = self.head()
            if parent is not None and head != parent:
                raise HubConflict(self._conflict_message(parent, head), head=head)
            for name, entry in target["files"].items():
                self._verify(self.path / "objects" / entry["sha256"], entry, name, target["id"])
            message = rollback_message(target["id"], target["message"])
            return self._write_commit(dict(target["files"]), message, head)

    # -- internals ----------------------------------------------------------

    def _resolve(self, revision: str) -> str:
        """A full commit id from an id or a unique prefix of at least 4 hex digits."""
        if (self.path / "commits" / f"{revision}.json").is_file():
            return revision
        if len(revision) >= _MIN_PREFIX and all(c in "0123456789abcdef" for c in revision):
            try:
                names = os.listdir(self.path / "commits")
            except FileNotFoundError:
                names = []
            matches = [n[:-5] for n in names if n.startswith(revision) and n.endswith(".json")]
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1:
                raise HubNotFound(f"Revision {revision!r} is ambiguous in local hub {self.path}: use more digits.")
        raise HubNotFound(f"No commit {revision!r} in local hub {self.path}. See `l4demons history`.")

    def _record_or_none(self, revision: str | None) -> dict | None:
        if revision is None:
            revision = self.head()
            if revision is None:
                return None
        return self._read_record(self._resolve(revision))

    def _read_record(self, commit_id: str) -> dict:
        path = self.path / "commits" / f"{commit_id}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as err:
            raise HubNotFound(f"No commit {commit_id!r} in local hub {self.path}. See `l4demons history`.") from err
        except (ValueError, UnicodeDecodeError) as err:
            raise CorruptFile(f"Commit record {path} is unreadable ({err}); the local hub is damaged.") from err
        if record.get("id") != commit_id or _commit_id(record) != commit_id:
            raise CorruptFile(f"Commit record {path} does not match its id; the local hub is damaged.")
        pruned = self.pruned()
        if pruned:  # contents deleted for good: the commit reads as if it never held them
            record["files"] = {n: e for n, e in record["files"].items() if e["sha256"] not in pruned}
        return record

    @staticmethod
    def _info(record: dict) -> CommitInfo:
        return CommitInfo(
            id=record["id"],
            message=record["message"],
            parent=record["parent"],
            created_at=record["created_at"],
            files=tuple(sorted(record["files"])),
        )

    def _verify(self, path: Path, entry: dict, filename: str, commit_id: str) -> None:
        where = f"{filename!r} of commit {short_id(commit_id)} in local hub {self.path}"
        try:
            digest, size = sha256_file(path)
        except FileNotFoundError as err:
            raise CorruptFile(f"{where} is missing from the object store ({path}).") from err
        if size != entry["size"] or digest != entry["sha256"]:
            raise CorruptFile(
                f"{where} is corrupt: expected {entry['size']} bytes with sha256 {entry['sha256'][:16]}..., "
                f"found {size} bytes with sha256 {digest[:16]}... ({path}). "
                "Use an earlier commit (`l4demons history`, `l4demons rollback REV`)."
            )

    def _check_parent(self, parent: str | None) -> dict | None:
        """Under the lock: the parent's record, or HubConflict if HEAD moved."""
        head = self.head()
        if head != parent:
            raise HubConflict(self._conflict_message(parent, head), head=head)
        return self._read_record(head) if head is not None else None

    def _conflict_message(self, parent: str | None, head: str | None) -> str:
        return (
            f"Local hub {self.path} moved: its head is {short_id(head) if head else 'empty'}, "
            f"this commit started from {short_id(parent) if parent else 'an empty hub'}. "
            "Pull the new head, merge and retry."
        )

    def _store_object(self, src: Path) -> dict:
        """Copy ``src`` into objects/ (hashing on the way); its {sha256, size} entry."""
        objects = self.path / "objects"
        objects.mkdir(exist_ok=True)
        tmp = objects / f"{_TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        digest = hashlib.sha256()
        size = 0
        try:
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                while chunk := fin.read(_COPY_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    fout.write(chunk)
                fout.flush()
                os.fsync(fout.fileno())
            os.chmod(tmp, 0o444)
            # Replace even when the object exists: a fresh copy heals a damaged one.
            os.replace(tmp, objects / digest.hexdigest())
        finally:
            tmp.unlink(missing_ok=True)
        return {"sha256": digest.hexdigest(), "size": size}

    def _write_commit(self, entries: dict, message: str, parent: str | None) -> CommitInfo:
        """Under the lock: fsync objects/, write the record, then move HEAD."""
        record: dict[str, Any] = {
            "format": _FORMAT,
            "message": message,
            "parent": parent,
            "created_at": time.time(),
            "files": {name: entries[name] for name in sorted(entries)},
        }
        record["id"] = _commit_id(record)
        if entries:
            _fsync_dir(self.path / "objects")
        commits = self.path / "commits"
        commits.mkdir(exist_ok=True)
        _atomic_write(commits / f"{record['id']}.json", json.dumps(record, indent=1).encode("utf-8"))
        _atomic_write(self.path / "HEAD", (record["id"] + "\n").encode("ascii"))
        logger.debug("[SAVE] local hub %s: commit %s %r", self.path, short_id(record["id"]), message)
        return self._info(record)

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold the hub's lock; sweep temporary files a killed writer left behind."""
        try:
            fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise HubError(
                f"Cannot write to the local hub {self.path} ({err.strerror}). "
                "Fix its permissions or pass a writable directory with --hub or L4D_HUB."
            ) from err
        try:
            _lock_fd(fd)
            self._sweep_tmp()
            try:
                yield
            except PermissionError as err:
                raise HubError(
                    f"Cannot write to the local hub {self.path} ({err.strerror}: {err.filename}). "
                    "Fix its permissions or pass a writable directory with --hub or L4D_HUB."
                ) from err
        finally:
            os.close(fd)  # closing releases the lock

    def _sweep_tmp(self) -> None:
        # Only lock holders write temporary files, so under the lock any is stale.
        for folder in (self.path, self.path / "objects", self.path / "commits"):
            try:
                names = os.listdir(folder)
            except FileNotFoundError:
                continue
            for name in names:
                if name.startswith(_TMP_PREFIX):
                    (folder / name).unlink(missing_ok=True)


def _commit_id(record: dict) -> str:
    """sha256 of the canonical record without its id, first 40 hex digits (git-sized)."""
    body = {k: v for k, v in record.items() if k != "id"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()[:40]


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` by temp file + fsync + os.replace + fsync of the directory."""
    tmp = path.with_name(f"{_TMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return  # directories cannot be fsync'ed on Windows; os.replace is still atomic
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lock_fd(fd: int) -> None:
    """Block until this process holds an exclusive lock on ``fd``."""
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        while True:
            try:
                msvcrt.locking(fd, msvcrt.LK_LOCK, 1)  # type: ignore[attr-defined]
                return
            except OSError:
                continue  # LK_LOCK gives up after ~10 s; keep waiting like flock does
    fcntl.flock(fd, fcntl.LOCK_EX)
