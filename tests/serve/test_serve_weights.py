"""Which weights are served: hub, fallbacks, the offline cache, local files, and the no-weights message."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

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
    src = resolve_weights(str(hub.path), "model_best.pt", cache_dir=tmp_path / "cache")
    assert (src.origin, src.file, src.commit, src.hub, src.note) == ("hub", "model_best.pt", hub.head(), str(hub.path), None)
    assert src.path.is_file()


def test_model_best_falls_back_to_model_before_the_first_evaluation(tmp_path: Path) -> None:
    hub = hub_with(tmp_path, "model.pt")
    src = resolve_weights(str(hub.path), "model_best.pt", cache_dir=tmp_path / "cache")
    assert src.file == "model.pt" and "no model_best.pt" in src.note
    with pytest.raises(NoWeightsError, match="holds no model.pt,"):  # model.pt asked for: no fallback
        resolve_weights(str(hub_with(tmp_path / "other", "model_best.pt").path), "model.pt",
                        cache_dir=tmp_path / "cache2")


def test_offline_restart_uses_the_cache_and_a_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    hub = hub_with(tmp_path, "model.pt", "model_best.pt")
    cache = tmp_path / "cache"
    first = resolve_weights(str(hub.path), "model_best.pt", cache_dir=cache)
    original = first.path.read_bytes()
    shutil.rmtree(hub.path)
    again = resolve_weights(str(hub.path), "model_best.pt", cache_dir=cache)
    assert (again.origin, again.commit, again.file) == ("cache", first.commit, "model_best.pt")
    assert again.path.read_bytes() == original
    again.path.write_bytes(b"not the weights")  # a damaged cached copy is not served
    with pytest.raises(NoWeightsError, match="nothing is cached"):
        resolve_weights(str(hub.path), "model_best.pt", cache_dir=cache)


def test_a_local_file_and_a_missing_one(tmp_path: Path) -> None:
    weights = tmp_path / "mine.pt"
    save_weights(build_network(TINY, seed=2), TINY, weights)
    src = resolve_weights(None, str(weights), cache_dir=tmp_path / "cache")
    assert (src.origin, src.path, src.commit) == ("local file", weights, None)
    with pytest.raises(NoWeightsError, match="neither"):
        resolve_weights(None, str(tmp_path / "missing.pt"), cache_dir=tmp_path / "cache")


def test_no_weights_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(NoWeightsError) as err:
        resolve_weights(str(tmp_path / "empty"), "model_best.pt", cache_dir=tmp_path / "cache")
    text = str(err.value)
    assert "l4demons train" in text and "--allow-random" in text and "--hub" in text
