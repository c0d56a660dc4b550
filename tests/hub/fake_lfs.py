"""The LFS side of the fake Hub: the batch API, uploads to a second host, downloads by redirect.

What the real Hub does with Xet off (``HF_HUB_DISABLE_XET=1``) and what
``huggingface_hub`` expects of it:

- ``POST /{repo}.git/info/lfs/objects/batch`` answers, per object, nothing to
  do (already stored) or an ``upload`` action on the storage host (one
  ``PUT``, or for large objects a multipart upload: part URLs and a
  ``chunk_size`` in the action's header, and a completion URL on the Hub),
  plus a ``verify`` action on the Hub;
- the storage host is another origin (its own port): it refuses requests
  that carry the Hub's ``Authorization`` header, as a pre-signed S3 URL does,
  so a client that leaks the token there fails; a part upload answers an
  ``ETag``; a body that stops short (its client was killed) stores nothing
  and is counted in ``aborted``;
- ``/resolve`` of an LFS file answers 302 to the storage host, with the
  ``X-Linked-Etag`` (sha256) and ``X-Linked-Size`` the client verifies.

With ``xet=True`` the Hub asks for Xet instead: the write-token endpoint
answers a CAS URL where nothing listens, so the Rust ``hf_xet`` library
fails as it does when the real CAS is unreachable.

Mixed into :class:`fake_hf.FakeHub`; every method runs under its lock.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime, timezone

REPO = r"([^/]+/[^/]+)"
LFS_ROUTES = [
    ("POST", re.compile(rf"^/{REPO}\.git/info/lfs/objects/batch$"), "lfs_batch"),
    ("POST", re.compile(rf"^/{REPO}\.git/info/lfs/objects/verify$"), "lfs_verify"),
    ("POST", re.compile(rf"^/{REPO}\.git/info/lfs/objects/complete/([0-9a-f]{{64}})$"), "lfs_complete"),
    ("GET", re.compile(rf"^/api/models/{REPO}/lfs-files$"), "lfs_files"),
    ("POST", re.compile(rf"^/api/models/{REPO}/lfs-files/batch$"), "lfs_delete"),
    ("GET", re.compile(rf"^/api/models/{REPO}/xet-write-token/([^/]+)$"), "xet_token"),
]
STORAGE_ROUTES = [
    ("PUT", re.compile(rf"^/lfs-upload/{REPO}/([0-9a-f]{{64}})$"), "storage_put"),
    ("GET", re.compile(rf"^/lfs-objects/{REPO}/([0-9a-f]{{64}})$"), "storage_get"),
    ("HEAD", re.compile(rf"^/lfs-objects/{REPO}/([0-9a-f]{{64}})$"), "storage_get"),
]
LFS_PUBLIC = {"lfs_complete"}  # the completion URL carries no token, as the client sends it


class Reply(Exception):
    """An HTTP answer (raised to short-cut a handler)."""

    def __init__(self, status: int, body: object = None, headers: dict | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


class LfsMixin:
    """LFS objects of each repo, the batch API and the storage host (see the module docstring)."""

    def _lfs_batch(self, method, query, body, repo_id) -> Reply:
        repo = self._repo(repo_id)
        payload = json.loads(body)
        objects = []
        for obj in payload["objects"]:
            oid, size = obj["oid"], int(obj["size"])
            entry: dict = {"oid": oid, "size": size, "authenticated": True}
            if oid not in repo.lfs:
                verify = {"href": f"{self.endpoint}/{repo_id}.git/info/lfs/objects/verify", "header": {}}
                if size > self.multipart_threshold:
                    parts = -(-size // self.chunk_size)
                    header = {"chunk_size": str(self.chunk_size)}
                    header.update({f"{i:05d}": f"{self.storage_endpoint}/lfs-upload/{repo_id}/{oid}?part={i}"
                                   for i in range(1, parts + 1)})
                    upload = {"href": f"{self.endpoint}/{repo_id}.git/info/lfs/objects/complete/{oid}",
                              "header": header}
                else:
                    upload = {"href": f"{self.storage_endpoint}/lfs-upload/{repo_id}/{oid}"}
                entry["actions"] = {"upload": upload, "verify": verify}
            objects.append(entry)
        return Reply(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

    def _storage_put(self, method, query, body, repo_id, oid) -> Reply:
        repo = self._repo(repo_id)
        part = query.get("part", [None])[0]
        if part is not None:
            repo.parts.setdefault(oid, {})[int(part)] = body
            return Reply(200, b"", {"ETag": f'"{hashlib.md5(body).hexdigest()}"'})
        self._store_object(repo, oid, body)
        return Reply(200, b"")

    def _lfs_complete(self, method, query, body, repo_id, oid) -> Reply:
        repo = self._repo(repo_id)
        parts = repo.parts.pop(oid, {})
        numbers = [p["partNumber"] for p in json.loads(body)["parts"]]
        if not numbers or any(n not in parts for n in numbers):
            raise Reply(400, {"error": "fake storage: the multipart upload misses parts"})
        self._store_object(repo, oid, b"".join(parts[n] for n in sorted(numbers)))
        return Reply(200, {"success": True})

    def _store_object(self, repo, oid: str, data: bytes) -> None:
        if hashlib.sha256(data).hexdigest() != oid:
            raise Reply(400, {"error": f"fake storage: the upload does not hash to {oid}"})
        repo.lfs.setdefault(oid, (data, time.time()))

    def _lfs_verify(self, method, query, body, repo_id) -> Reply:
        repo, obj = self._repo(repo_id), json.loads(body)
        stored = repo.lfs.get(obj["oid"])
        if stored is None or len(stored[0]) != int(obj["size"]):
            raise Reply(404, {"error": f"fake hub: LFS object {obj['oid']} was not uploaded"})
        return Reply(200, {})

    def _storage_get(self, method, query, body, repo_id, oid) -> Reply:
        stored = self._repo(repo_id).lfs.get(oid)
        if stored is None:
            raise Reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
        data = stored[0]
        name, commit = query.get("name", [""])[0], query.get("commit", [""])[0]
        if (name in self.corrupt or (commit, name) in self.corrupt) and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return Reply(200, data, {"ETag": f'"{oid}"'})

    def lfs_redirect(self, repo_id: str, commit, filename: str) -> Reply:
        """The Hub's answer to ``/resolve`` of an LFS file: a redirect to the storage host."""
        oid = hashlib.sha256(commit.files[filename]).hexdigest()
        size = len(commit.files[filename])
        location = f"{self.storage_endpoint}/lfs-objects/{repo_id}/{oid}?name={filename}&commit={commit.id}"
        return Reply(302, b"", {"Location": location, "X-Repo-Commit": commit.id, "ETag": f'"{oid}"',
                                "X-Linked-Etag": f'"{oid}"', "X-Linked-Size": str(size)})

    # -- storage accounting and clean-up -----------------------------------

    def used_storage(self, repo_id: str) -> int:
        """What the repo's storage counts: every LFS object kept, and the small files of its history."""
        repo = self.repos[repo_id]
        small = {}
        for commit in repo.commits.values():
            for name, data in commit.files.items():
                if name not in commit.lfs:
                    small[hashlib.sha1(data).hexdigest()] = len(data)
        return sum(len(d) for d, _ in repo.lfs.values()) + sum(small.values())

    def _lfs_files(self, method, query, body, repo_id) -> Reply:
        repo = self._repo(repo_id)
        names: dict[str, str] = {}
        for commit in repo.commits.values():
            for name in commit.lfs:
                names.setdefault(hashlib.sha256(commit.files[name]).hexdigest(), name)
        items = [
            {"fileOid": oid, "oid": oid, "filename": names.get(oid, ""), "size": len(data), "ref": "main",
             "pushedAt": datetime.fromtimestamp(when, timezone.utc).isoformat().replace("+00:00", "Z")}
            for oid, (data, when) in sorted(repo.lfs.items(), key=lambda kv: kv[1][1])
        ]
        return Reply(200, items)

    def _lfs_delete(self, method, query, body, repo_id) -> Reply:
        repo = self._repo(repo_id)
        deletions = json.loads(body)["deletions"]
        doomed = set(deletions["sha"])
        for oid in doomed:
            repo.lfs.pop(oid, None)
        if deletions.get("rewriteHistory", True):
            self._rewrite(repo, lambda name, data, lfs: not (lfs and hashlib.sha256(data).hexdigest() in doomed))
        self.deleted_lfs.extend(sorted(doomed))
        return Reply(200, {})

    def _xet_token(self, method, query, body, repo_id, rev) -> Reply:
        expires = int(time.time()) + 3600
        dead = "http://127.0.0.1:9"  # the discard port: nothing listens there
        return Reply(200, {"casUrl": dead, "accessToken": "fake", "exp": expires},
                     {"X-Xet-Cas-Url": dead, "X-Xet-Access-Token": "fake", "X-Xet-Token-Expiration": str(expires)})
