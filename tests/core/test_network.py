
import pytest
import torch

from l4demons.encoding import ENCODING_VERSION, NUM_PLANES, POLICY_SIZE
from l4demons.network import NetConfig, WeightsError, build_network, load_network, read_weights, save_weights


def test_forward_shapes():
    cfg = NetConfig.from_name("tiny")
    net = build_network(cfg, seed=0).eval()
    policy, wdl = net(torch.zeros(5, NUM_PLANES, 8, 8))
    assert policy.shape == (5, POLICY_SIZE)
    assert wdl.shape == (5, 3)


def test_weights_round_trip_with_weights_only(tmp_path):
    cfg = NetConfig(blocks=2, channels=16, se=False)
    net = build_network(cfg, seed=3).eval()
    path = tmp_path / "model.pt"
    save_weights(net, cfg, path)
    blob = torch.load(path, weights_only=True)  # no pickled code
    assert blob["config"]["blocks"] == 2
    loaded, loaded_cfg = load_network(path)
    assert loaded_cfg == cfg
    x = torch.randn(3, NUM_PLANES, 8, 8)
    with torch.no_grad():
        for a, b in zip(net(x), loaded(x)):
            assert torch.allclose(a, b)


def test_seeded_builds_are_identical():
    cfg = NetConfig.from_name("tiny")
    a, b = build_network(cfg, seed=7), build_network(cfg, seed=7)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"format": "l4demons-weights-v1", "payload": Evil()}, path)
    with pytest.raises(WeightsError):
        read_weights(path)


def test_truncated_file_is_refused(tmp_path):
    cfg = NetConfig.from_name("tiny")
    path = tmp_path / "model.pt"
    save_weights(build_network(cfg, 0), cfg, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsError):
        load_network(path)


def test_other_encoding_version_is_refused(tmp_path):
    cfg = NetConfig(blocks=1, channels=8, se=False, encoding_version=ENCODING_VERSION + 1)
    path = tmp_path / "model.pt"
    save_weights(build_network(NetConfig(blocks=1, channels=8, se=False), 0), cfg, path)
    with pytest.raises(WeightsError, match="encoding"):
        read_weights(path)


@pytest.mark.parametrize("name", ["b0c64", "b6c4", "huge", "b6"])
def test_impossible_sizes_are_refused(name):
    with pytest.raises(ValueError):
        NetConfig.from_name(name)


def test_presets_and_names():
    assert NetConfig.from_name("b10c128").channels == 128
    assert NetConfig.from_name("small") == NetConfig()
    assert NetConfig.from_name("b4c32-nose").se is False
