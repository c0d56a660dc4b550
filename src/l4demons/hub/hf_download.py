"""Downloads from the Hugging Face Hub, verified (mixed into :class:`HFHub`).

``hf_hub_download`` fetches a file of a commit into the HF cache (following
the Hub's redirect to its storage host for LFS files, or through Xet) under
the retry policy; then the cached blob, named after the ETag the Hub
reported (sha256 for LFS files, the git blob sha1 for small ones), is
hashed and compared with it. A mismatch or a truncated transfer is
downloaded once more, then refused as :class:`CorruptFile` (the bad copy is
removed from the cache).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url, try_to_load_from_cache
from huggingface_hub.errors import LocalEntryNotFoundError, RemoteEntryNotFoundError

from l4demons.hub.base import CorruptFile, HubError, HubUnavailable, sha256_file, short_id

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeVar

    T = TypeVar("T")

logger = logging.getLogger("l4demons.hub.hf")

_SHA1 = re.compile(r"[0-9a-f]{40}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class HFDownloadMixin:
    """Verified downloads of an :class:`HFHub`."""

    uri: str
    repo_id: str
    endpoint: str
    cache_dir: Path
    _token: str | None
    _call: Callable

    def _fetch(self, filename: str, revision: str, offline: bool) -> Path | None:
        """Download (or find in the cache) and verify; None when the file is not in the commit."""
        problem: str | None
        for attempt in (1, 2):
            try:
                path = self._call(f"download {filename}", functools.partial(
                    self._hf_download, filename, revision, offline, force=attempt == 2))
            except HubError:
                raise
            except OSError as err:
                if "Consistency check failed" not in str(err):
                    raise
                problem = f"the download was truncated ({err})"  # size differs from what the Hub announced
            else:
                if path is None:
                    return None
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

    def _hf_download(self, filename: str, revision: str, offline: bool, force: bool) -> Path | None:
        """One ``hf_hub_download``; None when the commit does not hold the file."""
        try:
            return Path(hf_hub_download(self.repo_id, filename, revision=revision, cache_dir=self.cache_dir,
                                        token=self._token, endpoint=self.endpoint, local_files_only=offline,
                                        force_download=force))
        except (RemoteEntryNotFoundError, LocalEntryNotFoundError) as err:
            if isinstance(err, RemoteEntryNotFoundError) or self._cached_absent(filename, revision):
                return None
            raise HubUnavailable(
                f"Cannot download {filename} of {self.uri} at {short_id(revision)}: the Hub is unreachable "
                "and the file is not cached. Check the network and retry."
            ) from err

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
            algo, actual = "git sha1", git_sha1(real)
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

    def _cached_absent(self, filename: str, revision: str) -> bool:
        cached = try_to_load_from_cache(self.repo_id, filename, cache_dir=self.cache_dir, revision=revision)
        return cached is not None and not isinstance(cached, str)



def git_sha1(path: Path) -> str:
    """The git blob id of a file: sha1 of ``b"blob <size>\\0"`` + content."""
    digest = hashlib.sha1(b"blob %d\0" % path.stat().st_size)
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
