"""Which weights are served: hub, fallbacks, the hub's cached commit when offline, local files, the no-weights message."""

from __future__ import annotations

from pathlib import Path

import pytest

from l4demons.hub.base import HubUnavailable
from l4demons.hub.local import LocalHub
from l4demons.network import build_network, save_weights
from l4demons.server.weights import NoWeightsError, resolve_weights

from serve_support import TINY


def hub_with(tmp_path: Path, *names: str) -> LocalHub:
    weights = tmp_path / "w.pt"
    save_weights(build_network(TINY, seed=1), TINY, weights)
    hub = LocalHub(tmp_path / "hub")
    hub.commit({n: weights for n in names}, "Training cycle 0, Elo ~0, Loss 0", parent=None)
    return hub


def test_from_the_hub_with_its_commit(tmp_path: Path) -> None:
    hub = hub_with(tmp_path, "model.pt", "model_best.pt")
    src = resolve_weights(str(hub.path), "model_best.pt")
    assert (src.origin, src.file, src.commit, src.hub, src.note) == ("hub", "model_best.pt", hub.head(), str(hub.path), None)
    assert src.path.is_file()


def test_model_best_falls_back_to_model_before_the_first_evaluation(tmp_path: Path) -> None:
    hub = hub_with(tmp_path, "model.pt")
    src = resolve_weights(str(hub.path), "model_best.pt")
    assert src.file == "model.pt" and "no model_best.pt" in src.note
    with pytest.raises(NoWeightsError, match="holds no model.pt at commit"):  # model.pt asked for: no fallback
        resolve_weights(str(hub_with(tmp_path / "other", "model_best.pt").path), "model.pt")


class UnreachableHub:
    """A hub that cannot be reached, with a commit of it cached on this machine (or none)."""

    def __init__(self, real: LocalHub, cached: str | None) -> None:
        self.uri, self.real, self.cached = "hf://me/l4d", real, cached

    def head(self) -> str | None:
        raise HubUnavailable("the network is down")

    def cached_head(self) -> str | None:
        return self.cached

    def download(self, name: str, commit: str | None = None) -> Path | None:
        return self.real.download(name, commit)


def test_an_unreachable_hub_serves_its_newest_cached_commit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hub = hub_with(tmp_path, "model.pt", "model_best.pt")
    monkeypatch.setattr("l4demons.server.weights.open_hub", lambda uri, token=None: UnreachableHub(hub, hub.head()))
    src = resolve_weights("hf://me/l4d", "model_best.pt")
    assert (src.origin, src.commit, src.file) == ("cache", hub.head(), "model_best.pt")
    assert "could not be reached" in src.note and "network is down" not in src.note  # public words only
    monkeypatch.setattr("l4demons.server.weights.open_hub", lambda uri, token=None: UnreachableHub(hub, None))
    with pytest.raises(NoWeightsError, match="cannot be reached .* nothing of it is cached"):
        resolve_weights("hf://me/l4d", "model_best.pt")


def test_a_local_file_and_a_missing_one(tmp_path: Path) -> None:
    weights = tmp_path / "mine.pt"
    save_weights(build_network(TINY, seed=2), TINY, weights)
    src = resolve_weights(None, str(weights))
    assert (src.origin, src.path, src.commit) == ("local file", weights, None)
    with pytest.raises(NoWeightsError, match="neither"):
        resolve_weights(None, str(tmp_path / "missing.pt"))


def test_no_weights_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NoWeightsError) as err:
        resolve_weights(str(tmp_path / "empty"), "model_best.pt")
    text = str(err.value)
    assert "l4demons train" in text and "--allow-random" in text and "--hub" in text
