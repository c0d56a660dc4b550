
import pytest
import torch

from l4demons.encoding import ENCODING_VERSION, NUM_PLANES, POLICY_SIZE
from l4demons.network import (
    NetConfig,
    WeightsError,
    build_network,
    load_network,
    max_params,
    read_weights,
    save_weights,
)


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
    assert NetConfig.from_name("small") == NetConfig(value_head="pool", material_head=True) == \
        NetConfig.from_name("b6c64-mat")
    assert NetConfig.from_name("b6c64") == NetConfig(value_head="pool")  # without the material head
    assert NetConfig.from_name("b4c32-nose").se is False
    # The first nets' fully connected value head: the dataclass default (old weights files lack the field),
    # and its own name, so a resumed old hub says what it holds.
    assert NetConfig().value_head == "fc" and NetConfig().name == "b6c64-se-fc"
    assert NetConfig.from_name("b6c64-fc") == NetConfig()
    # the material head (training only): a suffix of its own; files written before it lack the field
    assert NetConfig.from_name("b6c64-mat") == NetConfig(value_head="pool", material_head=True)
    assert NetConfig.from_name("b6c64-mat").name == "b6c64-se-mat"
    assert NetConfig.from_name(NetConfig.from_name("b4c32-nose-fc-mat").name).material_head is True


@pytest.mark.parametrize("name", ["tiny", "small", "medium", "large", "b3c48-nose", "b6c64-fc", "b6c64-mat",
                                  "b2c32-fc-mat"])
def test_parameter_count_is_what_the_net_holds(name):
    cfg = NetConfig.from_name(name)
    assert cfg.parameters == sum(p.numel() for p in build_network(cfg).parameters())


def test_the_large_preset_fits_the_default_bound_and_a_billion_does_not(monkeypatch):
    monkeypatch.delenv("L4D_MAX_PARAMS", raising=False)
    assert NetConfig.from_name("large").parameters <= max_params()
    with pytest.raises(ValueError, match="L4D_MAX_PARAMS"):
        NetConfig(blocks=64, channels=1024)
    monkeypatch.setenv("L4D_MAX_PARAMS", "100000")
    with pytest.raises(ValueError, match="over the limit of 100,000"):
        NetConfig.from_name("small")
    monkeypatch.setenv("L4D_MAX_PARAMS", "lots")
    with pytest.raises(ValueError, match="L4D_MAX_PARAMS='lots'"):
        NetConfig.from_name("tiny")


def write_blob(path, config, state=None):
    torch.save({"format": "l4demons-weights-v1", "config": config, "state_dict": state or {}}, path)


GOOD = {"blocks": 1, "channels": 8, "se": True, "se_ratio": 4, "value_hidden": 16, "encoding_version": ENCODING_VERSION}
DAMAGED = [
    pytest.param({**GOOD, "se_ratio": 0}, "se_ratio must be between 1 and 8", id="zero-ratio"),
    pytest.param({**GOOD, "se_ratio": 9}, "se_ratio must be between 1 and 8", id="ratio-over-width"),
    pytest.param({**GOOD, "channels": 100_000}, "channels must be between", id="absurd-width"),
    pytest.param({**GOOD, "blocks": 64, "channels": 1024}, "over the limit", id="a-billion-parameters"),
    pytest.param({**GOOD, "blocks": -3}, "blocks must be between", id="negative-blocks"),
    pytest.param({**GOOD, "blocks": 2.5}, "blocks must be a whole number", id="float-blocks"),
    pytest.param({**GOOD, "channels": True}, "channels must be a whole number", id="bool-channels"),
    pytest.param({**GOOD, "channels": "64"}, "channels must be a whole number", id="string-channels"),
    pytest.param({**GOOD, "se": "yes"}, "se must be true or false", id="string-se"),
    pytest.param({**GOOD, "value_hidden": 0}, "value_hidden must be between", id="zero-value-head"),
    pytest.param({**GOOD, "encoding_version": None}, "encoding_version must be a whole number", id="no-version"),
    pytest.param({**GOOD, "depth": 3}, "unexpected keyword", id="unknown-field"),
    pytest.param([1, 2], "holds no network config", id="config-not-a-dict"),
]


@pytest.mark.parametrize(("config", "message"), DAMAGED)
def test_a_damaged_config_is_one_line_weights_error(tmp_path, config, message):
    path = tmp_path / "model.pt"
    write_blob(path, config)
    with pytest.raises(WeightsError, match=message) as err:
        load_network(path)
    assert "\n" not in str(err.value)


def test_a_missing_state_dict_and_a_file_too_big_for_any_allowed_net(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    torch.save({"format": "l4demons-weights-v1", "config": GOOD}, path)
    with pytest.raises(WeightsError, match="no state dict"):
        read_weights(path)
    monkeypatch.setenv("L4D_MAX_PARAMS", "1000")
    path.write_bytes(b"\0" * (4 * 1000 + (16 << 20) + 1))
    with pytest.raises(WeightsError, match="more than a network of at most 1,000 parameters"):
        read_weights(path)
    with pytest.raises(WeightsError, match="cannot be read"):
        read_weights(tmp_path / "missing.pt")


def test_a_net_with_the_material_head_plays_as_any_other(tmp_path):
    """Policy and value are the same tensors with or without the head's output asked for; files load."""
    from l4demons.network import load_network, save_weights

    cfg = NetConfig.from_name("b2c32-mat")
    net = build_network(cfg, seed=3).eval()
    planes = torch.randn(4, 20, 8, 8)
    with torch.no_grad():
        policy, value = net(planes)
        policy2, value2, material = net(planes, material=True)
    assert torch.equal(policy, policy2) and torch.equal(value, value2) and material.shape == (4,)
    save_weights(net, cfg, tmp_path / "m.pt")
    back, back_cfg = load_network(tmp_path / "m.pt")
    assert back_cfg == cfg
    with torch.no_grad():
        assert torch.equal(back(planes)[1], value)
