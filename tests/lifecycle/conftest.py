"""Fixtures of the lifecycle tests: a local hub directory, and the fake Hugging Face Hub for child processes."""

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hub"))  # fake_hf.py, shared with the hub tests

from fake_hf import FakeHub  # noqa: E402


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    return tmp_path / "hub"


@pytest.fixture
def fake() -> Iterator[FakeHub]:
    """The fake Hub on loopback; children reach it through ``train_cli.hf_env``."""
    with FakeHub() as server:
        yield server
