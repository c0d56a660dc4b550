"""Which weights to play with: from the hub, else from the on-disk cache.

Every front door that plays (``serve.py``, ``l4demons uci``, the lichess-bot
adapter) resolves its weights here, so they all find the same file the same
way:

1. ``--file`` naming an existing local ``.pt`` file (a path, not one of the
   hub names) is used as it is.
2. Otherwise the hub is asked for ``--file`` at its head; a hub that has no
   ``model_best.pt`` yet (before the first evaluation) falls back to
   ``model.pt``. The copy is kept in the serve cache, one folder per hub, with
   the commit it came from.
3. When the hub cannot be reached or holds no weights, the newest cached copy
   is used, so a restart works offline.

No torch here: the HTTP server answers ``POST /`` before torch is imported.

A :class:`WeightsSource`'s ``note`` is shown by ``/health``, so it names no
path and quotes no exception; the details are logged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path

from l4demons.atomic import atomic_write
from l4demons.hub.base import HubError, open_hub, resolve_hub_uri, sha256_file

logger = logging.getLogger(__name__)

HUB_FILES = ("model_best.pt", "model.pt")
"""Weights files a hub commit may hold, best first."""


class NoWeightsError(Exception):
    """No weights anywhere: not on the hub, not in the cache. The message says what to do."""


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """Where the weights being played come from."""

    path: Path
    """A local file to load (read-only: it may live in a hub's object store)."""
    file: str
    """The hub file name served (``model_best.pt``/``model.pt``), or the local path."""
    hub: str
    """The hub's URI (empty for a local file)."""
    commit: str | None
    """The hub commit the file belongs to, when known."""
    origin: str
    """``hub``, ``cache`` (hub unreachable or empty) or ``local file``."""
    note: str | None = None
    """Anything the user should know (a fallback was taken), else None; public: no path, no exception text."""


def default_cache_dir() -> Path:
    """``$L4D_CACHE``, else ``$XDG_CACHE_HOME/l4demons/weights`` (``~/.cache/...``)."""
    if os.environ.get("L4D_CACHE"):
        return Path(os.environ["L4D_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "l4demons" / "weights"


def resolve_weights(
    hub: str | None = None, file: str = "model_best.pt", *, token: str | None = None, cache_dir: Path | None = None
) -> WeightsSource:
    """Find the weights to play with (see the module docstring for the order).

    :raises NoWeightsError: nothing usable exists; the message names what was tried.
    """
    local = Path(file).expanduser()
    if file not in HUB_FILES:
        if local.is_file():
            return WeightsSource(local, str(local), "", None, "local file")
        raise NoWeightsError(f"--file {file!r} is neither one of {', '.join(HUB_FILES)} nor an existing local file")
    uri = resolve_hub_uri(hub)
    cache = _HubCache(cache_dir or default_cache_dir(), uri)
    wanted = [file] + ([n for n in HUB_FILES if n != file] if file == "model_best.pt" else [])
    problem = public_problem = None
    try:
        found = _from_hub(uri, token, wanted)
    except (HubError, OSError) as e:
        found, problem, public_problem = None, f"hub {uri} failed: {e}", "the hub could not be read"
        logger.warning("[SERVE] %s; trying the cache in %s", problem, cache.folder)
    if found is not None:
        name, path, commit = found
        note = None if name == file else f"the hub holds no {file} yet; serving {name}"
        try:
            cache.put(name, path, commit)
        except OSError as e:  # a read-only cache must not stop serving
            logger.warning("[SERVE] could not cache %s in %s: %s", name, cache.folder, e)
        return WeightsSource(path, name, uri, commit, "hub", note)
    if problem is None:
        problem = public_problem = f"hub {uri} holds no {' or '.join(wanted)}"
        if not uri.startswith("hf://"):
            public_problem = f"the hub holds no {' or '.join(wanted)}"
    cached = cache.get(wanted)
    if cached is not None:
        name, path, commit = cached
        logger.warning("[SERVE] %s; serving the copy cached in %s", problem, cache.folder)
        return WeightsSource(path, name, uri, commit, "cache",
                             f"{public_problem}; serving the cached copy from commit {_short(commit)}")
    raise NoWeightsError(
        f"no weights to play with: {problem}, and nothing is cached in {cache.folder}. "
        f"Train first (`l4demons train --hub {uri}`), point --hub at a hub that holds weights, "
        "or pass --allow-random to play an untrained network."
    )


def _from_hub(uri: str, token: str | None, wanted: list[str]) -> tuple[str, Path, str | None] | None:
    hub = open_hub(uri, token=token)
    commit = hub.head()
    if commit is None:
        return None
    for name in wanted:
        path = hub.download(name, commit)
        if path is not None:
            return name, Path(path), commit
    return None


def _short(commit: str | None) -> str:
    return commit[:8] if commit else "?"


class _HubCache:
    """Copies of served weights, one folder per hub: ``<file>`` plus ``<file>.json``."""

    def __init__(self, root: Path, uri: str) -> None:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", uri).strip("-")[-60:]
        self.folder = root / f"{slug}-{hashlib.sha1(uri.encode()).hexdigest()[:10]}"
        self.uri = uri

    def put(self, name: str, src: Path, commit: str | None) -> None:
        digest, size = sha256_file(src)
        meta_path = self.folder / f"{name}.json"
        old = _read_json(meta_path)
        if old.get("sha256") == digest and (self.folder / name).is_file() and old.get("commit") == commit:
            return
        atomic_write(self.folder / name, src.read_bytes())  # weights files are bounded (see network.max_params)
        meta = {"hub": self.uri, "file": name, "commit": commit, "sha256": digest, "size": size, "saved_at": time.time()}
        atomic_write(meta_path, json.dumps(meta, indent=1))

    def get(self, wanted: list[str]) -> tuple[str, Path, str | None] | None:
        for name in wanted:
            path, meta = self.folder / name, _read_json(self.folder / f"{name}.json")
            if not path.is_file() or not meta:
                continue
            if sha256_file(path)[0] != meta.get("sha256"):
                logger.warning("[SERVE] cached %s does not match its checksum; ignoring it", path)
                continue
            return name, path, meta.get("commit")
        return None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


