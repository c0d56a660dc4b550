"""Where work runs: ``--device auto|cpu|cuda``, how many self-play workers, and the learner's arithmetic."""

from __future__ import annotations

import os

import torch


def resolve_device(device: str = "auto") -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``.

    :raises ValueError: an unknown device, or ``cuda`` without a GPU.
    """
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"unknown device {device!r}: use auto, cpu or cuda")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but no CUDA GPU is available (use --device cpu)")
    return device


def cpu_count() -> int:
    """Cores this process may use (respects affinity and container limits)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


MAX_WORKERS_PER_GPU = 4
"""A cap on self-play processes per GPU: each holds its own CUDA context and copy of the network."""


def workers_per_gpu(gpus: int | None = None) -> int:
    """Self-play processes that share one GPU.

    A worker spends its time between network calls on the CPU (the search,
    a few microseconds per leaf), and the GPU idles then; several workers per
    GPU keep it busy while each prepares its next batch. Each worker needs a
    core of its own, and one core stays with the learner.
    """
    gpus = max(1, torch.cuda.device_count() if gpus is None else gpus)
    return max(1, min(MAX_WORKERS_PER_GPU, (cpu_count() - 1) // gpus))


def default_workers(device: str) -> int:
    """Self-play worker processes: one per core on CPU; several per GPU on CUDA (see :func:`workers_per_gpu`)."""
    if device.startswith("cuda"):
        gpus = max(1, torch.cuda.device_count()) if device == "cuda" else 1
        return gpus * workers_per_gpu(gpus)
    return cpu_count()


def worker_devices(device: str) -> list[str]:
    """Devices the self-play workers spread over (round robin: worker i uses device i mod the count)."""
    if device == "cuda":
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return [device]


CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")
"""CPU flags (``/proc/cpuinfo``) of native bfloat16 arithmetic: AMD Zen 4 and later, Intel Cooper Lake, Sapphire
Rapids and later. Without them oneDNN emulates bf16, which is no faster than float32."""


def cpu_has_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU does bfloat16 arithmetic natively (Linux; False where the flags cannot be read)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return any(flag in CPU_BF16_FLAGS for flag in line.split(":", 1)[-1].split())
    except OSError:
        pass
    return False


PRECISIONS = ("auto", "bf16", "fp32")


def check_precision(asked: str) -> None:
    """:raises ValueError: ``asked`` is not one of :data:`PRECISIONS`."""
    if asked not in PRECISIONS:
        raise ValueError(f"unknown precision {asked!r}: use one of {', '.join(PRECISIONS)}")


def learner_precision(asked: str, device: str | torch.device) -> str:
    """``bf16`` or ``fp32``: what ``--precision`` ``asked`` means on ``device``.

    ``auto`` is bf16 autocast where the hardware does it natively (a CUDA GPU
    with bf16, a CPU with :data:`CPU_BF16_FLAGS`), float32 elsewhere.

    :raises ValueError: an unknown precision, or bf16 on a GPU without it.
    """
    check_precision(asked)
    cuda = torch.device(device).type == "cuda"
    native = torch.cuda.is_bf16_supported() if cuda else cpu_has_bf16()
    if asked == "auto":
        return "bf16" if native else "fp32"
    if asked == "bf16" and cuda and not native:
        raise ValueError("--precision bf16 was asked for, but this GPU has no bfloat16 (use fp32 or auto)")
    return asked
