"""A small fake of the Hugging Face Hub's HTTP API, served on loopback.

It speaks what ``huggingface_hub`` 2.x sends for the calls :class:`HFHub`
makes: repo creation, model info (with file sizes and hashes, and the
repository's ``usedStorage``), preupload, NDJSON commits with
``parentCommit`` (412 when stale), commit lists (paginated with a ``Link``
header), paths-info, ``/resolve`` downloads with the headers the client
checks (``X-Repo-Commit``, ``ETag``, ``Content-Length``, ``X-Error-Code``),
the LFS-file listing and permanent deletion, and super-squash.

Two ways files travel:

- ``lfs=False``: preupload always answers "regular", so every file goes
  inline as base64 in the commit. Files whose name ends with one of
  ``lfs_suffixes`` are *reported* as LFS files (sha256 ETag, ``lfs``
  metadata) although they were committed inline, so both verification paths
  of the client get exercised.
- ``lfs=True``: as the real Hub with Xet off. Preupload answers "lfs" for
  binary files (a NUL byte in the sample), large ones (``lfs_threshold``)
  and those the repo's ``.gitattributes`` marks; they go through the LFS
  batch API to a second host and download by a redirect to it
  (:mod:`fake_lfs`). ``xet=True`` answers Xet's token endpoint with a CAS
  where nothing listens (the client's Xet upload fails).

Auth: ``tokens`` maps a token to "write" or "read". An unknown token gets 401,
a read token gets 403 on writes, no token gets 401 ``RepoNotFound`` (repos
are private). Faults: :meth:`FakeHub.fail` answers the next requests that
match (on either host) with an error status; ``corrupt`` lists file names (or
``(commit id, file name)`` pairs) served with a flipped byte. A request whose
body stops short (its client was killed mid-upload) changes nothing and is
counted in ``aborted``; ``upload_rate`` slows the storage host's reading of
uploads, so that a kill lands mid-upload. ``commit_limit=(n, seconds)`` answers a commit past
``n`` in any such window with 429 and ``Retry-After`` (counted in
``rate_limited``), as the Hub limits commits per repository. Runs in
threads; other processes reach it through ``HF_ENDPOINT=fake.endpoint``.
:meth:`FakeHub.stop` then :meth:`FakeHub.start` is a Hub outage: the repos
are kept and the fake listens on the same ports again.
"""

from __future__ import annotations

import base64
import dataclasses
import fnmatch
import hashlib
import json
import math
import re
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from fake_lfs import LFS_PUBLIC, LFS_ROUTES, REPO, STORAGE_ROUTES, LfsMixin, Reply

CLIENT_ENV = {"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0",
              "HF_HUB_DISABLE_PROGRESS_BARS": "1", "L4D_HF_RETRIES": "3", "L4D_HF_RETRY_DELAY": "0.05"}
"""What a client process talking to this fake needs in its environment (the HF client reads it once, at
import): no Xet, no telemetry, never offline by accident, quick retries."""

_ROUTES = [
    ("POST", re.compile(r"^/api/repos/create$"), "create"),
    ("GET", re.compile(rf"^/api/models/{REPO}(?:/revision/([^/]+))?$"), "info"),
    ("POST", re.compile(rf"^/api/models/{REPO}/preupload/([^/]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/models/{REPO}/commit/([^/]+)$"), "commit"),
    ("GET", re.compile(rf"^/api/models/{REPO}/commits/([^/]+)$"), "commits"),
    ("POST", re.compile(rf"^/api/models/{REPO}/paths-info/([^/]+)$"), "paths_info"),
    ("POST", re.compile(rf"^/api/models/{REPO}/super-squash/([^/]+)$"), "squash"),
    ("GET", re.compile(rf"^/{REPO}/resolve/([^/]+)/(.+)$"), "resolve"),
    ("HEAD", re.compile(rf"^/{REPO}/resolve/([^/]+)/(.+)$"), "resolve"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("GET", re.compile(r"^/api/agent-harnesses$"), "agent_harnesses"),
    *LFS_ROUTES,
]
_WRITES = {"create", "preupload", "commit", "squash", "lfs_batch", "lfs_verify", "lfs_delete", "xet_token"}
_PUBLIC = {"agent_harnesses", *LFS_PUBLIC}
GITATTRIBUTES = b"".join(b"*.%s filter=lfs diff=lfs merge=lfs -text\n" % ext for ext in (b"pt", b"npz", b"bin", b"pth"))


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(data: bytes) -> bytes:
    oid = hashlib.sha256(data).hexdigest()
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {len(data)}\n".encode()


@dataclasses.dataclass
class Commit:
    id: str
    title: str
    parent: str | None
    date: str
    files: dict[str, bytes]
    description: str = ""
    lfs: frozenset[str] = frozenset()
    """Names of the files stored as LFS objects (their bytes are in ``files`` too)."""


@dataclasses.dataclass
class Repo:
    commits: dict[str, Commit] = dataclasses.field(default_factory=dict)
    main: str | None = None
    private: bool = False
    lfs: dict[str, tuple[bytes, float]] = dataclasses.field(default_factory=dict)
    """LFS objects: sha256 -> (bytes, time pushed)."""
    parts: dict[str, dict[int, bytes]] = dataclasses.field(default_factory=dict)
    """Parts of multipart uploads not completed yet."""
    commit_times: list[float] = dataclasses.field(default_factory=list)
    """When each commit request arrived (the rate limit)."""


class FakeHub(LfsMixin):
    """The fake Hub's state and its server threads (a context manager)."""

    def __init__(
        self, tokens: dict[str, str] | None = None, lfs_suffixes: tuple[str, ...] = (".pt",), page_size: int = 3,
        lfs: bool = False, xet: bool = False, lfs_threshold: int = 10_000_000, multipart_threshold: int = 1_000_000,
        chunk_size: int = 400_000, commit_limit: tuple[int, float] | None = None, upload_rate: float | None = None,
    ) -> None:
        self.tokens = {"hf_write": "write", "hf_read": "read"} if tokens is None else tokens
        self.lfs_mode, self.xet = lfs or xet, xet
        self.lfs_suffixes = () if self.lfs_mode else lfs_suffixes
        self.page_size = page_size
        self.lfs_threshold, self.multipart_threshold, self.chunk_size = lfs_threshold, multipart_threshold, chunk_size
        self.commit_limit = commit_limit
        self.upload_rate = upload_rate
        """Bytes/s the storage host reads uploads at (None: as fast as it can), so a kill can land mid-upload."""
        self.repos: dict[str, Repo] = {}
        self.corrupt: set[str | tuple[str, str]] = set()
        self.requests: list[tuple[str, str]] = []
        self.aborted: list[tuple[str, str]] = []
        self.rate_limited: list[tuple[str, float]] = []
        self.deleted_lfs: list[str] = []
        self.leaked_auth: list[str] = []
        self.uploads: list[tuple[float, float]] = []
        """``time.monotonic()`` at the start and the end of receiving each upload to the storage host."""
        self._faults: list[list] = []  # [method, path substring, status, times left, after, headers]
        self._lock = threading.Lock()
        self._counter = 0
        self._servers: list[ThreadingHTTPServer] = []
        self._endpoint = self._storage = ""

    # -- control ------------------------------------------------------------

    def start(self) -> FakeHub:
        """Listen (again): on free ports the first time, on the same ports after :meth:`stop`."""
        self._endpoint = self._serve(self._endpoint, storage=False)
        self._storage = self._serve(self._storage, storage=True)
        return self

    def _serve(self, endpoint: str, storage: bool) -> str:
        fake = self

        class Handler(_Handler):
            hub = fake
            is_storage = storage

        port = int(endpoint.rsplit(":", 1)[1]) if endpoint else 0
        server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        self._servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        self._servers = []

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """Where the fake Hub listens (kept after stop(), which makes it unreachable)."""
        return self._endpoint

    @property
    def storage_endpoint(self) -> str:
        """The second host, where LFS objects are uploaded to and downloaded from."""
        return self._storage

    def fail(self, method: str, path_part: str, status: int = 503, times: int = 1, after: bool = False,
             headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests ``method`` on a path containing ``path_part`` with ``status``.

        With ``after=True`` the request is carried out first and only its answer is replaced,
        like a response lost on the way back. ``headers`` go with the answer (``Retry-After``...).
        """
        with self._lock:
            self._faults.append([method, path_part, status, times, after, headers or {}])

    def heal(self) -> None:
        """Forget the faults still pending."""
        with self._lock:
            self._faults.clear()

    def create_repo(self, repo_id: str) -> None:
        """Create ``repo_id`` as the Hub does: one "initial commit" holding .gitattributes."""
        with self._lock:
            self._new_repo(repo_id)

    def push(self, repo_id: str, title: str, files: dict[str, bytes], description: str = "") -> str:
        """Commit ``files`` on main as another writer would (others carried over); the new commit id."""
        with self._lock:
            repo = self.repos[repo_id]
            head = repo.commits[repo.main] if repo.main else None
            merged, lfs = (dict(head.files), set(head.lfs)) if head else ({}, set())
            for name, data in files.items():
                merged[name] = data
                lfs.discard(name)
                if self._is_lfs(head, name, data):
                    repo.lfs.setdefault(hashlib.sha256(data).hexdigest(), (data, time.time()))
                    lfs.add(name)
            return self._add_commit(repo, title, merged, description, frozenset(lfs)).id

    def history(self, repo_id: str) -> list[Commit]:
        """Commits of main, oldest first."""
        with self._lock:
            repo, chain, cid = self.repos[repo_id], [], self.repos[repo_id].main
            while cid is not None:
                chain.append(repo.commits[cid])
                cid = repo.commits[cid].parent
            return chain[::-1]

    def count(self, method: str, path_part: str) -> int:
        return sum(1 for m, p in self.requests if m == method and path_part in p)

    # -- state changes (under the lock) -------------------------------------

    def _new_repo(self, repo_id: str) -> None:
        repo = self.repos[repo_id] = Repo()
        self._add_commit(repo, "initial commit", {".gitattributes": GITATTRIBUTES})

    def _add_commit(self, repo: Repo, title: str, files: dict[str, bytes], description: str = "",
                    lfs: frozenset[str] = frozenset()) -> Commit:
        self._counter += 1
        cid = hashlib.sha1(f"{self._counter}:{repo.main}:{title}".encode()).hexdigest()
        date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        commit = repo.commits[cid] = Commit(cid, title, repo.main, date, files, description, lfs)
        repo.main = cid
        return commit

    def _rewrite(self, repo: Repo, keep) -> None:
        """Rewrite main's history, oldest first, keeping the files ``keep(name, bytes, is_lfs)`` accepts."""
        chain, cid = [], repo.main
        while cid is not None:
            chain.append(repo.commits[cid])
            cid = repo.commits[cid].parent
        repo.commits, repo.main = {}, None
        for old in reversed(chain):
            files = {n: d for n, d in old.files.items() if keep(n, d, n in old.lfs)}
            new = self._add_commit(repo, old.title, files, old.description, frozenset(old.lfs & set(files)))
            new.date = old.date

    def _is_lfs(self, commit: Commit | None, path: str, data: bytes) -> bool:
        """Whether the Hub would store this file as LFS (lfs mode only)."""
        if not self.lfs_mode or not data:
            return False
        if len(data) >= self.lfs_threshold or b"\0" in data[:512]:
            return True
        attributes = (commit.files.get(".gitattributes", b"") if commit else GITATTRIBUTES).decode()
        patterns = [line.split()[0] for line in attributes.splitlines() if "filter=lfs" in line]
        return any(fnmatch.fnmatch(path, p) or fnmatch.fnmatch(path.rsplit("/", 1)[-1], p) for p in patterns)

    # -- request handling ----------------------------------------------------

    def handle(self, method: str, path: str, query: dict, headers, body: bytes, complete: bool = True,
               storage: bool = False) -> Reply:
        with self._lock:
            self.requests.append((method, path))
            if not complete:
                self.aborted.append((method, path))
                return Reply(400, {"error": "fake hub: the request body stopped short"})
            fault = next((f for f in self._faults if f[0] == method and f[1] in path and f[3] > 0), None)
            if fault is not None:
                fault[3] -= 1
            if fault is not None and not fault[4]:
                return Reply(fault[2], {"error": "Service Unavailable (fake)"}, fault[5])
            reply = self._route(method, path, query, headers, body, storage)
            if fault is not None:
                return Reply(fault[2], {"error": "Service Unavailable (fake)"}, fault[5])
            return reply

    def _route(self, method: str, path: str, query: dict, headers, body: bytes, storage: bool) -> Reply:
        if storage and headers.get("authorization"):  # a pre-signed URL must not get the Hub token
            self.leaked_auth.append(path)
            return Reply(400, b"<Error><Code>InvalidArgument</Code><Message>Only one auth mechanism allowed"
                              b"</Message></Error>")
        for route_method, pattern, name in STORAGE_ROUTES if storage else _ROUTES:
            match = pattern.match(path)
            if route_method == method and match:
                try:
                    if not storage and name not in _PUBLIC:
                        self._auth(headers, write=name in _WRITES)
                    args = [unquote(g) if g else g for g in match.groups()]
                    return getattr(self, f"_{name}")(method, query, body, *args)
                except Reply as reply:
                    return reply
        if storage:
            return Reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
        return Reply(404, {"error": f"fake hub: no route {method} {path}"})

    def _auth(self, headers, write: bool) -> None:
        auth = headers.get("authorization") or ""
        token = auth.removeprefix("Bearer ").strip() or None
        if token is None and write:
            raise Reply(401, {"error": "You must be authenticated to access this resource"})
        if token is None:  # repos are private: the Hub hides them from anonymous readers
            raise Reply(401, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        role = self.tokens.get(token)
        if role is None:
            message = "Invalid credentials in Authorization header"
            raise Reply(401, {"error": message}, {"X-Error-Message": message})
        if write and role != "write":
            raise Reply(403, {"error": "You don't have the rights to write to this repo (read-only token)"})

    def _repo(self, repo_id: str) -> Repo:
        if repo_id not in self.repos:
            raise Reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        return self.repos[repo_id]

    def _rev(self, repo: Repo, rev: str | None) -> Commit:
        cid = repo.main if rev in (None, "main") else rev
        if cid not in repo.commits:
            raise Reply(404, {"error": f"Invalid rev id: {rev}"}, {"X-Error-Code": "RevisionNotFound"})
        return repo.commits[cid]

    def _create(self, method, query, body) -> Reply:
        payload = json.loads(body)
        org, name = payload.get("organization"), payload["name"]
        repo_id = f"{org}/{name}" if org else name
        if repo_id in self.repos:
            raise Reply(409, {"error": "You already created this model repo", "url": f"{self.endpoint}/{repo_id}"})
        self._new_repo(repo_id)
        self.repos[repo_id].private = payload.get("visibility") == "private" or bool(payload.get("private"))
        return Reply(200, {"url": f"{self.endpoint}/{repo_id}", "name": repo_id})

    def _info(self, method, query, body, repo_id, rev) -> Reply:
        commit = self._rev(self._repo(repo_id), rev)
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = [self._sibling(commit, name) if blobs else {"rfilename": name} for name in sorted(commit.files)]
        info = {"id": repo_id, "sha": commit.id, "private": True, "siblings": siblings}
        if "usedStorage" in query.get("expand", []):
            info["usedStorage"] = self.used_storage(repo_id)
        return Reply(200, info)

    def _preupload(self, method, query, body, repo_id, rev) -> Reply:
        commit = self._rev(self._repo(repo_id), rev)
        files = []
        for f in json.loads(body)["files"]:
            sample = base64.b64decode(f.get("sample") or "")
            lfs = self._is_lfs(commit, f["path"], sample + b"x" * max(0, int(f["size"]) - len(sample)))
            old = commit.files.get(f["path"])
            oid = None if old is None else hashlib.sha256(old).hexdigest() if f["path"] in commit.lfs else git_sha1(old)
            files.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False,
                          "oid": oid})
        return Reply(200, {"files": files})

    def _commit(self, method, query, body, repo_id, rev) -> Reply:
        repo = self._repo(repo_id)
        if rev != "main":
            raise Reply(404, {"error": "fake hub commits to main only"}, {"X-Error-Code": "RevisionNotFound"})
        self._rate_limit(repo, repo_id)
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent is not None and parent != repo.main:
            raise Reply(412, {"error": "A commit has happened since. Please refresh and try again."})
        head = repo.commits[repo.main] if repo.main else None
        files, lfs = (dict(head.files), set(head.lfs)) if head else ({}, set())
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
                lfs.discard(value["path"])
            elif key == "deletedFile":
                if value["path"] not in files:
                    raise Reply(404, {"error": "A file with this name doesn't exist"}, {"X-Error-Code": "EntryNotFound"})
                files.pop(value["path"])
                lfs.discard(value["path"])
            elif key == "lfsFile":
                data = self._lfs_object(repo, value["oid"])
                files[value["path"]] = data
                if self.lfs_mode:
                    lfs.add(value["path"])
            else:
                raise Reply(400, {"error": f"fake hub: unsupported commit line {key}"})
        commit = self._add_commit(repo, header["summary"], files, header.get("description") or "", frozenset(lfs))
        url = f"{self.endpoint}/{repo_id}/commit/{commit.id}"
        return Reply(200, {"commitUrl": url, "commitOid": commit.id, "pullRequestUrl": None})

    def _lfs_object(self, repo: Repo, oid: str) -> bytes:
        if oid in repo.lfs:
            return repo.lfs[oid][0]
        if not self.lfs_mode:  # a copy of a file reported as LFS although inline: find the bytes by sha256
            for c in repo.commits.values():
                for data in c.files.values():
                    if hashlib.sha256(data).hexdigest() == oid:
                        return data
        raise Reply(422, {"error": f"Your push was rejected: LFS pointer {oid} points to a file that does not exist"})

    def _rate_limit(self, repo: Repo, repo_id: str) -> None:
        if self.commit_limit is None:
            return
        n, window = self.commit_limit
        now = time.monotonic()
        repo.commit_times = [t for t in repo.commit_times if now - t < window]
        if len(repo.commit_times) >= n:
            wait = max(1, math.ceil(repo.commit_times[0] + window - now))
            self.rate_limited.append((repo_id, time.time()))
            raise Reply(429, {"error": "You have exceeded the rate limit for repository commits"}, {
                "Retry-After": str(wait), "RateLimit": f'"commits";r=0;t={wait}',
                "RateLimit-Policy": f'"fixed window";"commits";q={n};w={math.ceil(window)}'})
        repo.commit_times.append(now)

    def _commits(self, method, query, body, repo_id, rev) -> Reply:
        repo = self._repo(repo_id)
        chain, commit = [], self._rev(repo, rev)
        while True:
            chain.append(commit)
            if commit.parent is None:
                break
            commit = repo.commits[commit.parent]
        page = int(query.get("p", ["0"])[0])
        items = [
            {"id": c.id, "title": c.title, "message": c.description, "date": c.date, "authors": [{"user": "fake"}]}
            for c in chain[page * self.page_size : (page + 1) * self.page_size]
        ]
        headers = {}
        if (page + 1) * self.page_size < len(chain):
            headers["Link"] = f'<{self.endpoint}/api/models/{repo_id}/commits/{rev}?p={page + 1}>; rel="next"'
        return Reply(200, items, headers)

    def _paths_info(self, method, query, body, repo_id, rev) -> Reply:
        commit = self._rev(self._repo(repo_id), rev)
        paths = parse_qs(body.decode()).get("paths", [])
        return Reply(200, [self._entry(commit, p) for p in paths if p in commit.files])

    def _squash(self, method, query, body, repo_id, branch) -> Reply:
        repo = self._repo(repo_id)
        head = self._rev(repo, branch)
        message = (json.loads(body or b"{}").get("message") or "Super-squash").strip()
        repo.commits, repo.main = {}, None
        self._add_commit(repo, message, dict(head.files), "", head.lfs)
        return Reply(200, {})

    def _validate_yaml(self, method, query, body) -> Reply:
        return Reply(200, {"errors": [], "warnings": []})

    def _agent_harnesses(self, method, query, body) -> Reply:
        return Reply(200, {"standardEnvVars": [], "harnesses": {}})

    def _entry(self, commit: Commit, path: str) -> dict:
        data = commit.files[path]
        if path in commit.lfs:
            entry = {"type": "file", "path": path, "size": len(data), "oid": git_sha1(lfs_pointer(data))}
        else:
            entry = {"type": "file", "path": path, "size": len(data), "oid": git_sha1(data)}
        if path in commit.lfs or path.endswith(self.lfs_suffixes):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def _sibling(self, commit: Commit, name: str) -> dict:
        entry = self._entry(commit, name)
        sibling = {"rfilename": name, "size": entry["size"], "blobId": entry["oid"]}
        if "lfs" in entry:
            sibling["lfs"] = {"sha256": entry["lfs"]["oid"], "size": entry["size"], "pointerSize": 134}
        return sibling

    def _resolve(self, method, query, body, repo_id, rev, filename) -> Reply:
        commit = self._rev(self._repo(repo_id), rev)
        if filename not in commit.files:
            raise Reply(
                404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit.id}
            )
        if filename in commit.lfs:
            return self.lfs_redirect(repo_id, commit, filename)
        data = commit.files[filename]
        headers = {"X-Repo-Commit": commit.id, "ETag": f'"{git_sha1(data)}"'}
        if filename.endswith(self.lfs_suffixes):
            sha = hashlib.sha256(data).hexdigest()
            headers.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data))})
        if (filename in self.corrupt or (commit.id, filename) in self.corrupt) and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return Reply(200, data, headers)


def _read(stream, length: int, rate: float | None) -> bytes:
    """``length`` bytes of a request body, at ``rate`` bytes/s if given (a slow link); fewer if the client died."""
    if rate is None:
        return stream.read(length) if length else b""
    parts, got = [], 0
    while got < length:
        piece = stream.read(min(16_384, length - got))
        if not piece:
            break
        parts.append(piece)
        got += len(piece)
        time.sleep(len(piece) / rate)
    return b"".join(parts)


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    is_storage: bool
    protocol_version = "HTTP/1.0"  # one request per connection: stop() really cuts clients off

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        rate = self.hub.upload_rate if self.is_storage else None
        t0 = time.monotonic()
        try:
            body = _read(self.rfile, length, rate)
        except OSError:  # the client died mid-request
            body = b""
        if self.is_storage and self.command == "PUT":
            self.hub.uploads.append((t0, time.monotonic()))
        complete = len(body) == length
        reply = self.hub.handle(self.command, url.path, parse_qs(url.query), self.headers, body, complete,
                                storage=self.is_storage)
        data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        try:
            self.send_response(reply.status)
            content_type = "application/octet-stream" if isinstance(reply.body, bytes) else "application/json"
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for key, value in reply.headers.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError:  # nobody is listening any more (a killed client)
            pass

    do_GET = do_POST = do_HEAD = do_PUT = _serve

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass
