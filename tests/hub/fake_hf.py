"""A small fake of the Hugging Face Hub's HTTP API, served on loopback.

It speaks what ``huggingface_hub`` 2.x sends for the calls :class:`HFHub`
makes: repo creation, model info, preupload (always "regular", so files travel
inline as base64 in the commit: no LFS, no Xet), NDJSON commits with
``parentCommit`` (412 when stale), commit lists (paginated with a ``Link``
header), paths-info, and ``/resolve`` downloads with the headers the client
checks (``X-Repo-Commit``, ``ETag``, ``Content-Length``, ``X-Error-Code``).

Files whose name ends with one of ``lfs_suffixes`` are *reported* as LFS
files (sha256 ETag, ``lfs`` metadata) although they were committed inline, so
both verification paths of the client get exercised.

Auth: ``tokens`` maps a token to "write" or "read". An unknown token gets 401,
a read token gets 403 on writes, no token gets 401 ``RepoNotFound`` (repos
are private). Faults: :meth:`FakeHub.fail` answers the next requests that
match with an error status; ``corrupt`` lists file names (or ``(commit id,
file name)`` pairs) served with a flipped byte. A request whose body stops
short (its client was killed mid-upload) changes nothing and is counted in
``aborted``. Runs in a thread; other processes reach it through
``HF_ENDPOINT=fake.endpoint``. :meth:`FakeHub.stop` then :meth:`FakeHub.start`
is a Hub outage: the repos are kept and the fake listens on the same port again.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

_REPO = r"([^/]+/[^/]+)"
_ROUTES = [
    ("POST", re.compile(r"^/api/repos/create$"), "create"),
    ("GET", re.compile(rf"^/api/models/{_REPO}(?:/revision/([^/]+))?$"), "info"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/preupload/([^/]+)$"), "preupload"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/commit/([^/]+)$"), "commit"),
    ("GET", re.compile(rf"^/api/models/{_REPO}/commits/([^/]+)$"), "commits"),
    ("POST", re.compile(rf"^/api/models/{_REPO}/paths-info/([^/]+)$"), "paths_info"),
    ("GET", re.compile(rf"^/{_REPO}/resolve/([^/]+)/(.+)$"), "resolve"),
    ("HEAD", re.compile(rf"^/{_REPO}/resolve/([^/]+)/(.+)$"), "resolve"),
    ("POST", re.compile(r"^/api/validate-yaml$"), "validate_yaml"),
    ("GET", re.compile(r"^/api/agent-harnesses$"), "agent_harnesses"),
]
_WRITES = {"create", "preupload", "commit"}
_PUBLIC = {"agent_harnesses"}


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclasses.dataclass
class Commit:
    id: str
    title: str
    parent: str | None
    date: str
    files: dict[str, bytes]
    description: str = ""


@dataclasses.dataclass
class Repo:
    commits: dict[str, Commit] = dataclasses.field(default_factory=dict)
    main: str | None = None
    private: bool = False


class _Reply(Exception):
    def __init__(self, status: int, body: object = None, headers: dict | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}


class FakeHub:
    """The fake Hub's state and its server thread (a context manager)."""

    def __init__(
        self, tokens: dict[str, str] | None = None, lfs_suffixes: tuple[str, ...] = (".pt",), page_size: int = 3
    ) -> None:
        self.tokens = {"hf_write": "write", "hf_read": "read"} if tokens is None else tokens
        self.lfs_suffixes = lfs_suffixes
        self.page_size = page_size
        self.repos: dict[str, Repo] = {}
        self.corrupt: set[str | tuple[str, str]] = set()
        self.requests: list[tuple[str, str]] = []
        self.aborted: list[tuple[str, str]] = []
        self._faults: list[list] = []  # [method, path substring, status, times left, after]
        self._lock = threading.Lock()
        self._counter = 0
        self._server: ThreadingHTTPServer | None = None
        self._endpoint = ""

    # -- control ------------------------------------------------------------

    def start(self) -> FakeHub:
        """Listen (again): on a free port the first time, on the same port after :meth:`stop`."""
        fake = self

        class Handler(_Handler):
            hub = fake

        port = int(self._endpoint.rsplit(":", 1)[1]) if self._endpoint else 0
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """Where the fake listens (kept after stop(), which makes it unreachable)."""
        return self._endpoint

    def fail(self, method: str, path_part: str, status: int = 503, times: int = 1, after: bool = False) -> None:
        """Answer the next ``times`` requests ``method`` on a path containing ``path_part`` with ``status``.

        With ``after=True`` the request is carried out first and only its answer is replaced,
        like a response lost on the way back.
        """
        with self._lock:
            self._faults.append([method, path_part, status, times, after])

    def create_repo(self, repo_id: str) -> None:
        """Create ``repo_id`` as the Hub does: one "initial commit" holding .gitattributes."""
        with self._lock:
            self._new_repo(repo_id)

    def push(self, repo_id: str, title: str, files: dict[str, bytes], description: str = "") -> str:
        """Commit ``files`` on main as another writer would (others carried over); the new commit id."""
        with self._lock:
            repo = self.repos[repo_id]
            merged = dict(repo.commits[repo.main].files) if repo.main else {}
            merged.update(files)
            return self._add_commit(repo, title, merged, description).id

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
        self._add_commit(repo, "initial commit", {".gitattributes": b"*.pt filter=lfs diff=lfs merge=lfs -text\n"})

    def _add_commit(self, repo: Repo, title: str, files: dict[str, bytes], description: str = "") -> Commit:
        self._counter += 1
        cid = hashlib.sha1(f"{self._counter}:{repo.main}:{title}".encode()).hexdigest()
        date = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        commit = repo.commits[cid] = Commit(cid, title, repo.main, date, files, description)
        repo.main = cid
        return commit

    # -- request handling ----------------------------------------------------

    def handle(self, method: str, path: str, query: dict, headers, body: bytes, complete: bool = True) -> _Reply:
        with self._lock:
            self.requests.append((method, path))
            if not complete:
                self.aborted.append((method, path))
                return _Reply(400, {"error": "fake hub: the request body stopped short"})
            fault = next((f for f in self._faults if f[0] == method and f[1] in path and f[3] > 0), None)
            if fault is not None:
                fault[3] -= 1
            if fault is not None and not fault[4]:
                return _Reply(fault[2], {"error": "Service Unavailable (fake)"})
            reply = self._route(method, path, query, headers, body)
            if fault is not None:
                return _Reply(fault[2], {"error": "Service Unavailable (fake)"})
            return reply

    def _route(self, method: str, path: str, query: dict, headers, body: bytes) -> _Reply:
        for route_method, pattern, name in _ROUTES:
            match = pattern.match(path)
            if route_method == method and match:
                try:
                    if name not in _PUBLIC:
                        self._auth(headers, write=name in _WRITES)
                    args = [unquote(g) if g else g for g in match.groups()]
                    return getattr(self, f"_{name}")(method, query, body, *args)
                except _Reply as reply:
                    return reply
        return _Reply(404, {"error": f"fake hub: no route {method} {path}"})

    def _auth(self, headers, write: bool) -> None:
        auth = headers.get("authorization") or ""
        token = auth.removeprefix("Bearer ").strip() or None
        if token is None and write:
            raise _Reply(401, {"error": "You must be authenticated to access this resource"})
        if token is None:  # repos are private: the Hub hides them from anonymous readers
            raise _Reply(401, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        role = self.tokens.get(token)
        if role is None:
            message = "Invalid credentials in Authorization header"
            raise _Reply(401, {"error": message}, {"X-Error-Message": message})
        if write and role != "write":
            raise _Reply(403, {"error": "You don't have the rights to write to this repo (read-only token)"})

    def _repo(self, repo_id: str) -> Repo:
        if repo_id not in self.repos:
            raise _Reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        return self.repos[repo_id]

    def _rev(self, repo: Repo, rev: str | None) -> Commit:
        cid = repo.main if rev in (None, "main") else rev
        if cid not in repo.commits:
            raise _Reply(404, {"error": f"Invalid rev id: {rev}"}, {"X-Error-Code": "RevisionNotFound"})
        return repo.commits[cid]

    def _create(self, method, query, body) -> _Reply:
        payload = json.loads(body)
        org, name = payload.get("organization"), payload["name"]
        repo_id = f"{org}/{name}" if org else name
        if repo_id in self.repos:
            raise _Reply(409, {"error": "You already created this model repo", "url": f"{self.endpoint}/{repo_id}"})
        self._new_repo(repo_id)
        self.repos[repo_id].private = payload.get("visibility") == "private" or bool(payload.get("private"))
        return _Reply(200, {"url": f"{self.endpoint}/{repo_id}", "name": repo_id})

    def _info(self, method, query, body, repo_id, rev) -> _Reply:
        commit = self._rev(self._repo(repo_id), rev)
        siblings = [{"rfilename": name} for name in sorted(commit.files)]
        return _Reply(200, {"id": repo_id, "sha": commit.id, "private": True, "siblings": siblings})

    def _preupload(self, method, query, body, repo_id, rev) -> _Reply:
        commit = self._rev(self._repo(repo_id), rev)
        files = [
            {
                "path": f["path"],
                "uploadMode": "regular",
                "shouldIgnore": False,
                "oid": git_sha1(commit.files[f["path"]]) if f["path"] in commit.files else None,
            }
            for f in json.loads(body)["files"]
        ]
        return _Reply(200, {"files": files})

    def _commit(self, method, query, body, repo_id, rev) -> _Reply:
        repo = self._repo(repo_id)
        if rev != "main":
            raise _Reply(404, {"error": "fake hub commits to main only"}, {"X-Error-Code": "RevisionNotFound"})
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        header = lines[0]["value"]
        parent = header.get("parentCommit")
        if parent is not None and parent != repo.main:
            raise _Reply(412, {"error": "A commit has happened since. Please refresh and try again."})
        files = dict(repo.commits[repo.main].files) if repo.main else {}
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                files[value["path"]] = base64.b64decode(value["content"])
            elif key == "deletedFile":
                files.pop(value["path"], None)
            elif key == "lfsFile":  # a copy of a file reported as LFS: find the bytes by sha256
                blobs = {hashlib.sha256(b).hexdigest(): b for c in repo.commits.values() for b in c.files.values()}
                if value["oid"] not in blobs:
                    raise _Reply(400, {"error": f"unknown LFS object {value['oid']}"})
                files[value["path"]] = blobs[value["oid"]]
            else:
                raise _Reply(400, {"error": f"fake hub: unsupported commit line {key}"})
        commit = self._add_commit(repo, header["summary"], files, header.get("description") or "")
        url = f"{self.endpoint}/{repo_id}/commit/{commit.id}"
        return _Reply(200, {"commitUrl": url, "commitOid": commit.id, "pullRequestUrl": None})

    def _commits(self, method, query, body, repo_id, rev) -> _Reply:
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
        return _Reply(200, items, headers)

    def _paths_info(self, method, query, body, repo_id, rev) -> _Reply:
        commit = self._rev(self._repo(repo_id), rev)
        paths = parse_qs(body.decode()).get("paths", [])
        return _Reply(200, [self._entry(p, commit.files[p]) for p in paths if p in commit.files])

    def _validate_yaml(self, method, query, body) -> _Reply:
        return _Reply(200, {"errors": [], "warnings": []})

    def _agent_harnesses(self, method, query, body) -> _Reply:
        return _Reply(200, {"standardEnvVars": [], "harnesses": {}})

    def _entry(self, path: str, data: bytes) -> dict:
        entry = {"type": "file", "path": path, "size": len(data), "oid": git_sha1(data)}
        if path.endswith(self.lfs_suffixes):
            entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
        return entry

    def _resolve(self, method, query, body, repo_id, rev, filename) -> _Reply:
        commit = self._rev(self._repo(repo_id), rev)
        if filename not in commit.files:
            raise _Reply(
                404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit.id}
            )
        data = commit.files[filename]
        headers = {"X-Repo-Commit": commit.id, "ETag": f'"{git_sha1(data)}"'}
        if filename.endswith(self.lfs_suffixes):
            sha = hashlib.sha256(data).hexdigest()
            headers.update({"ETag": f'"{sha}"', "X-Linked-Etag": f'"{sha}"', "X-Linked-Size": str(len(data))})
        if (filename in self.corrupt or (commit.id, filename) in self.corrupt) and data:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        return _Reply(200, data, headers)


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.0"  # one request per connection: stop() really cuts clients off

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = self.rfile.read(length) if length else b""
        except OSError:  # the client died mid-request
            body = b""
        complete = len(body) == length
        reply = self.hub.handle(self.command, url.path, parse_qs(url.query), self.headers, body, complete)
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

    do_GET = do_POST = do_HEAD = _serve

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass
