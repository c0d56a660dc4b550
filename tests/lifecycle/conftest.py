"""Fixtures of the lifecycle tests."""

from pathlib import Path

import pytest


@pytest.fixture
def hub_dir(tmp_path: Path) -> Path:
    return tmp_path / "hub"
