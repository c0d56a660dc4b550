"""The served model: loaded in a background thread, so the server answers at once.

States: ``loading`` -> ``ready`` (a bot can play) or ``failed``. Torch is
imported inside the loading thread, never at server start. A /move that
arrives while loading awaits :meth:`ModelStore.until_loaded` (no thread is
held while it waits).

What the store reports is public: ``/health`` and /move show it to anyone
who can reach the port. So a status names no local path (a local hub is
``local``, a local weights file its bare name) and a failure is described
by its kind in our own words, with what to do; the full reason, exception
text or traceback goes to the server's log only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from l4demons.server.settings import ServeSettings
from l4demons.server.weights import NoWeightsError, WeightsSource, resolve_weights

if TYPE_CHECKING:
    from l4demons.bot import Bot

logger = logging.getLogger(__name__)


class ModelState(str, enum.Enum):
    LOADING = "loading"
    READY = "ready"
    FAILED = "failed"


@dataclasses.dataclass(frozen=True)
class ModelStatus:
    """A snapshot of the store, as ``/health`` reports it."""

    state: ModelState
    hub: str | None = None
    """The hub the weights came from: ``hf://owner/repo`` or ``local`` (None: a local file, a random net,
    or not known yet)."""
    file: str | None = None
    """``model_best.pt``, ``model.pt`` or a local file's bare name; None for a random net."""
    commit: str | None = None
    """Hub commit of the weights, when known."""
    origin: str | None = None
    """``hub``, ``cache``, ``local file`` or ``random``."""
    device: str | None = None
    net: str | None = None
    """Network size, e.g. ``b6c64-se``."""
    error: str | None = None
    """Why loading failed (state ``failed``), in public words: no path, no exception text."""
    note: str | None = None
    """A fallback that was taken (cached copy, model.pt instead of model_best.pt, random net)."""
    load_seconds: float | None = None


Loader = Callable[[], "tuple[Bot, ModelStatus]"]
"""Builds the bot and says where it came from; raises with a user-facing message on failure."""


class ModelStore:
    """Holds the bot once it is loaded; thread-safe snapshots of its state."""

    def __init__(self, loader: Loader) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._status = ModelStatus(ModelState.LOADING)
        self._bot: Bot | None = None
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []  # guarded by _lock

    @classmethod
    def from_settings(cls, settings: ServeSettings) -> ModelStore:
        """A store that loads what ``settings`` name (hub, file, device, random fallback)."""
        return cls(lambda: load_bot(settings))

    @classmethod
    def ready_with(cls, bot: Bot, **fields: object) -> ModelStore:
        """A store that is ready at once with ``bot`` (tests, embedding)."""
        status = ModelStatus(ModelState.READY, device=bot.device, net=bot.config.name, **fields)
        store = cls(lambda: (bot, status))
        store._finish(bot, status)
        return store

    def start(self) -> None:
        """Begin loading in a daemon thread (no-op when already started or done)."""
        with self._lock:
            if self._thread is not None or self._done.is_set():
                return
            self._thread = threading.Thread(target=self._load, name="l4d-model-load", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until loading ended (ready or failed); False on timeout."""
        return self._done.wait(timeout)

    async def until_loaded(self, timeout: float) -> bool:
        """Await the end of loading (ready or failed) for at most ``timeout`` seconds; False on timeout."""
        loop, ended = asyncio.get_running_loop(), asyncio.Event()
        with self._lock:
            if self._done.is_set():
                return True
            self._waiters.append((loop, ended))
        try:
            await asyncio.wait_for(ended.wait(), max(0.0, timeout))
            return True
        except asyncio.TimeoutError:
            return self._done.is_set()
        finally:
            with self._lock:
                if (loop, ended) in self._waiters:
                    self._waiters.remove((loop, ended))

    @property
    def bot(self) -> Bot | None:
        """The bot when ready, else None."""
        with self._lock:
            return self._bot

    def status(self) -> ModelStatus:
        with self._lock:
            return self._status

    def _load(self) -> None:
        t0 = time.perf_counter()
        try:
            bot, status = self._loader()
        except Exception as e:  # noqa: BLE001 - any failure becomes the failed state, with its reason
            if _is_user_error(e):
                logger.error("[SERVE] model not loaded: %s", " ".join(str(e).split()))
            else:
                logger.exception("[SERVE] loading the model failed")
            self._finish(None, ModelStatus(ModelState.FAILED, error=public_error(e),
                                           load_seconds=round(time.perf_counter() - t0, 3)))
            return
        status = dataclasses.replace(status, load_seconds=round(time.perf_counter() - t0, 3))
        logger.info("[SERVE] model ready: %s %s (commit %s, %s) on %s", status.origin, status.file,
                    (status.commit or "?")[:8], status.net, status.device)
        self._finish(bot, status)

    def _finish(self, bot: Bot | None, status: ModelStatus) -> None:
        with self._lock:
            self._bot, self._status = bot, status
            self._done.set()
            waiters, self._waiters = self._waiters, []
        for loop, ended in waiters:
            try:
                loop.call_soon_threadsafe(ended.set)
            except RuntimeError:  # that loop has closed: nobody is waiting there any more
                pass


def _is_user_error(e: Exception) -> bool:
    """Errors whose message is for the user as it is (no traceback): WeightsError is a ValueError."""
    from l4demons.hub.base import HubError

    return isinstance(e, (NoWeightsError, HubError, ValueError))


def public_error(e: Exception) -> str:
    """What /health and /move may say about a failed load: its kind and what to do, never its text."""
    from l4demons.hub.base import HubError

    network = sys.modules.get("l4demons.network")  # not imported: the failure came before any weights were read
    if isinstance(e, NoWeightsError):
        return ("no weights to play with: the hub holds none and none are cached here. Train first, point --hub "
                "at a hub that holds weights, or start with --allow-random (the server's log has the details)")
    if network is not None and isinstance(e, network.WeightsError):
        return "the weights file cannot be used (damaged, too large, or made for other code); the server's log says why"
    if isinstance(e, HubError):
        return "the hub could not be read; the server's log says why"
    if isinstance(e, ValueError):
        return "the model could not be loaded with these settings; the server's log says why"
    return "the model could not be loaded (an internal error); the server's log has the traceback"


def public_hub(uri: str | None) -> str | None:
    """A hub as /health shows it: ``hf://owner/repo`` as it is, a directory as ``local``."""
    if not uri:
        return None
    return uri if uri.startswith("hf://") else "local"


def load_bot(settings: ServeSettings) -> tuple[Bot, ModelStatus]:
    """Resolve, load and warm up the weights ``settings`` name.

    :raises NoWeightsError: no weights anywhere and ``allow_random`` is off.
    :raises ValueError: an unusable device or weights file.
    """
    import torch

    from l4demons.bot import Bot
    from l4demons.devices import resolve_device
    from l4demons.network import NetConfig, default_net

    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    try:
        source: WeightsSource = resolve_weights(settings.hub, settings.file, token=settings.token)
    except NoWeightsError as e:
        if not settings.allow_random:
            raise
        net = settings.random_net or default_net(device)
        logger.warning("[SERVE] %s -- serving an UNTRAINED %s network, as --allow-random asks", e, net)
        bot = Bot.random(NetConfig.from_name(net), device=device)
        status = ModelStatus(ModelState.READY, origin="random", device=bot.device, net=bot.config.name,
                             note="untrained network (--allow-random): no weights were found")
    else:
        if source.note:
            logger.warning("[SERVE] %s", source.note)
        logger.info("[SERVE] loading %s", source.path)
        bot = Bot.from_file(source.path, device)
        status = ModelStatus(ModelState.READY, hub=public_hub(source.hub), file=Path(source.file).name,
                             commit=source.commit, origin=source.origin, device=bot.device, net=bot.config.name,
                             note=source.note)
    if settings.warmup:
        bot.warmup()
    return bot, status
