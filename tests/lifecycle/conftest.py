"""Fixtures of the lifecycle tests: a local hub directory, and the fake Hugging Face Hub for child processes.

The fake Hub carries binary files through LFS to its second host, as the
real Hub does with Xet off (the inline path is covered by ``tests/hub``).
"""

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))  # fake_hf.py, shared with the hub tests
# For HFHub used in this process (huggingface_hub reads these once, at import): no Xet, no telemetry.
for _name, _value in {"HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0",
                      "HF_HUB_DISABLE_PROGRESS_BARS": "1"}.items():
    os.environ.setdefault(_name, _value)

from fake_hf import FakeHub  # noqa: E402


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    return tmp_path / "hub"


@pytest.fixture
def fake() -> Iterator[FakeHub]:
    """The fake Hub on loopback, LFS on; children reach it through ``train_cli.hf_env``."""
    with FakeHub(lfs=True) as server:
        yield server
