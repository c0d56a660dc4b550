"""The served model: loaded in a background thread, so the server answers at once.

States: ``loading`` -> ``ready`` (a bot can play) or ``failed`` (the reason is
kept for ``/health`` and for /move's 503). Torch is imported inside the
loading thread, never at server start.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
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
    """The hub the weights came from (None: a local file, a random net, or not known yet)."""
    file: str | None = None
    """``model_best.pt``, ``model.pt`` or a local path; None for a random net."""
    commit: str | None = None
    """Hub commit of the weights, when known."""
    origin: str | None = None
    """``hub``, ``cache``, ``local file`` or ``random``."""
    device: str | None = None
    net: str | None = None
    """Network size, e.g. ``b6c64-se``."""
    error: str | None = None
    """Why loading failed (state ``failed``)."""
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
            message = str(e) if _is_user_error(e) else f"{type(e).__name__}: {e}"
            if not _is_user_error(e):
                logger.exception("[SERVE] loading the model failed")
            logger.error("[SERVE] model not loaded: %s", message)
            self._finish(None, ModelStatus(ModelState.FAILED, error=message, load_seconds=time.perf_counter() - t0))
            return
        status = dataclasses.replace(status, load_seconds=round(time.perf_counter() - t0, 3))
        logger.info("[SERVE] model ready: %s %s (commit %s, %s) on %s", status.origin, status.file,
                    (status.commit or "?")[:8], status.net, status.device)
        self._finish(bot, status)

    def _finish(self, bot: Bot | None, status: ModelStatus) -> None:
        with self._lock:
            self._bot, self._status = bot, status
        self._done.set()


def _is_user_error(e: Exception) -> bool:
    """Errors whose message is for the user as it is (no traceback): WeightsError is a ValueError."""
    from l4demons.hub.base import HubError

    return isinstance(e, (NoWeightsError, HubError, ValueError))


def load_bot(settings: ServeSettings) -> tuple[Bot, ModelStatus]:
    """Resolve, load and warm up the weights ``settings`` name.

    :raises NoWeightsError: no weights anywhere and ``allow_random`` is off.
    :raises ValueError: an unusable device or weights file.
    """
    import torch

    from l4demons.bot import Bot
    from l4demons.devices import resolve_device
    from l4demons.network import NetConfig

    if settings.threads:
        torch.set_num_threads(settings.threads)
    device = resolve_device(settings.device)
    try:
        source: WeightsSource = resolve_weights(settings.hub, settings.file, token=settings.token,
                                                 cache_dir=settings.cache_dir)
    except NoWeightsError as e:
        if not settings.allow_random:
            raise
        logger.warning("[SERVE] %s -- serving an UNTRAINED %s network, as --allow-random asks", e, settings.random_net)
        bot = Bot.random(NetConfig.from_name(settings.random_net), device=device)
        status = ModelStatus(ModelState.READY, origin="random", device=bot.device, net=bot.config.name,
                             note=f"untrained network (--allow-random): {e}")
    else:
        if source.note:
            logger.warning("[SERVE] %s", source.note)
        bot = Bot.from_file(source.path, device)
        status = ModelStatus(ModelState.READY, hub=source.hub or None, file=source.file, commit=source.commit,
                             origin=source.origin, device=bot.device, net=bot.config.name, note=source.note)
    if settings.warmup:
        bot.warmup()
    return bot, status
