"""Where work runs: ``--device auto|cpu|cuda``, and how many self-play workers."""

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


def default_workers(device: str) -> int:
    """One self-play worker per GPU on CUDA, one per core on CPU."""
    if device.startswith("cuda"):
        return max(1, torch.cuda.device_count())
    return cpu_count()


def worker_devices(device: str) -> list[str]:
    """Devices the self-play workers spread over (round robin)."""
    if device == "cuda":
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    return [device]
