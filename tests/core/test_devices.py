import pytest

from l4demons import devices


@pytest.mark.parametrize("cores,gpus,per_gpu", [(2, 1, 1), (16, 4, 3), (64, 1, 4), (8, 8, 1), (1, 1, 1)])
def test_several_self_play_workers_share_a_gpu_when_there_are_cores(monkeypatch: pytest.MonkeyPatch, cores: int,
                                                                     gpus: int, per_gpu: int) -> None:
    monkeypatch.setattr(devices, "cpu_count", lambda: cores)
    assert devices.workers_per_gpu(gpus) == per_gpu
    monkeypatch.setattr(devices.torch.cuda, "device_count", lambda: gpus)
    assert devices.default_workers("cuda") == gpus * per_gpu
    assert devices.default_workers("cuda:0") == devices.workers_per_gpu(1)
    assert devices.default_workers("cpu") == cores
