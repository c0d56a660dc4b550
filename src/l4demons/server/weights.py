"""Which weights to play with: a local file, the hub's head, or offline the hub's cached commit.

Every front door that plays (``serve.py``, ``l4demons uci``, the lichess-bot
adapter) resolves its weights here, so they all find the same file the same
way:

1. ``--file`` naming an existing local ``.pt`` file (a path, not one of the
   hub names) is used as it is.
2. Otherwise the hub is asked for ``--file`` at its head; a hub that has no
   ``model_best.pt`` yet (before the first evaluation) falls back to
   ``model.pt``.
3. When the hub cannot be reached, the newest commit of it this machine has
   cached is served, so a restart works offline.

There is one cache of weights, the hub's own: the Hugging Face cache for an
``hf://`` hub (verified downloads, and the commit an offline start resumes
from: :mod:`l4demons.hub.hf_cache`), which training uses too. A local hub
is a directory on this machine and needs none.

No torch here: the HTTP server answers ``POST /`` before torch is imported.
A :class:`WeightsSource`'s ``note`` is shown by ``/health``, so it names no
path and quotes no exception; the details are logged.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

from l4demons.hub.base import Hub, HubUnavailable, open_hub, resolve_hub_uri

logger = logging.getLogger(__name__)

HUB_FILES = ("model_best.pt", "model.pt")
"""Weights files a hub commit may hold, best first."""


class NoWeightsError(Exception):
    """No weights anywhere: not on the hub, not in its cache. The message says what to do."""


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
    """``hub``, ``cache`` (the hub unreachable: its newest commit cached here) or ``local file``."""
    note: str | None = None
    """Anything the user should know (a fallback was taken), else None; public: no path, no exception text."""


def resolve_weights(hub: str | None = None, file: str = "model_best.pt", *, token: str | None = None) -> WeightsSource:
    """Find the weights to play with (see the module docstring for the order).

    :raises NoWeightsError: nothing usable exists; the message names what was tried and what to do.
    :raises l4demons.hub.base.HubError: the hub cannot be used (a bad token, a file on the hub that is damaged).
    """
    local = Path(file).expanduser()
    if file not in HUB_FILES:
        if local.is_file():
            return WeightsSource(local, str(local), "", None, "local file")
        raise NoWeightsError(f"--file {file!r} is neither one of {', '.join(HUB_FILES)} nor an existing local file")
    uri = resolve_hub_uri(hub)
    opened = open_hub(uri, token=token)
    commit, origin, note = _head(opened)
    wanted = [file] + ([n for n in HUB_FILES if n != file] if file == "model_best.pt" else [])
    for name in wanted if commit is not None else []:
        path = opened.download(name, commit)
        if path is not None:
            fallback = None if name == file else f"the hub holds no {file} yet; serving {name}"
            return WeightsSource(Path(path), name, uri, commit, origin, "; ".join(filter(None, (note, fallback))) or None)
    raise NoWeightsError(
        f"no weights to play with: hub {uri} holds no {' or '.join(wanted)}"
        + (f" at commit {commit[:8]}" if commit else " (it has no commit yet)") + ". "
        f"Train first (`l4demons train --hub {uri}`), point --hub at a hub that holds weights, "
        "or pass --allow-random to play an untrained network."
    )


def _head(hub: Hub) -> tuple[str | None, str, str | None]:
    """(commit, origin, note): the hub's head, or when it cannot be reached the newest commit cached here.

    :raises NoWeightsError: the hub cannot be reached and nothing of it is cached.
    """
    try:
        return hub.head(), "hub", None
    except HubUnavailable as e:
        cached = getattr(hub, "cached_head", lambda: None)()
        if cached is None:
            raise NoWeightsError(
                f"no weights to play with: hub {hub.uri} cannot be reached ({e}) and nothing of it is cached on this "
                "machine. Check the network and retry, point --hub at a hub that holds weights, "
                "or pass --allow-random to play an untrained network."
            ) from e
        logger.warning("[SERVE] hub %s cannot be reached (%s); serving its newest commit cached here, %s",
                       hub.uri, e, cached[:8])
        return cached, "cache", f"the hub could not be reached; serving its cached commit {cached[:8]}"
