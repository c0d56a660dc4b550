"""Fixtures for the hub tests: a local hub, a fake Hugging Face Hub, and both behind one `hub` fixture."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

# Before huggingface_hub is imported (it reads these once): never touch the real
# Hub, the user's cache or their saved token.
os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="l4d-test-hf-home-")
os.environ.pop("HF_TOKEN", None)
os.environ.pop("HF_HUB_CACHE", None)
os.environ["HF_HUB_OFFLINE"] = "0"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_XET"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
sys.path.insert(0, str(Path(__file__).parent))

import pytest
from fake_hf import FakeHub

from l4demons.hub.hf import HFHub
from l4demons.hub.local import LocalHub

REPO = "me/l4d"


MODES = {"inline": False, "lfs": True}
"""The fake Hub's two ways of carrying files: all inline, or binary files through LFS (as the real Hub)."""


@pytest.fixture(params=list(MODES))
def fake(request: pytest.FixtureRequest) -> Iterator[FakeHub]:
    with FakeHub(lfs=MODES[request.param]) as server:
        yield server


def hf_maker(fake: FakeHub, tmp_path: Path) -> Callable[..., HFHub]:
    """HFHub on the fake, with a per-test cache and fast retries."""

    def make(token: str | None = "hf_write", repo: str = REPO, cache: Path | None = None) -> HFHub:
        return HFHub(
            f"hf://{repo}",
            token=token,
            endpoint=fake.endpoint,
            cache_dir=cache or tmp_path / "hf-cache",
            retries=3,
            retry_delay=0.01,
            retry_budget=5.0,
        )

    return make


@pytest.fixture
def make_hf(fake: FakeHub, tmp_path: Path) -> Callable[..., HFHub]:
    return hf_maker(fake, tmp_path)


@pytest.fixture(params=["local", "hf-inline", "hf-lfs"])
def hub(request: pytest.FixtureRequest, tmp_path: Path):
    """An empty hub of each backend (the fake Hub it talks to, if any, in ``request.node.fake``)."""
    if request.param == "local":
        return LocalHub(tmp_path / "hub")
    server = FakeHub(lfs=request.param == "hf-lfs").start()
    request.addfinalizer(server.stop)
    request.node.fake = server
    return hf_maker(server, tmp_path)()


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, bytes], Path]:
    """Write bytes to a fresh local file and return its path."""
    counter = iter(range(1_000_000))

    def make(name: str, data: bytes) -> Path:
        path = tmp_path / "src" / f"{next(counter)}-{name.replace('/', '_')}"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        return path

    return make


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child process that imports l4demons and the test helpers."""
    import l4demons

    src = str(Path(l4demons.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([src, str(Path(__file__).parent)]))
    env.update(extra)
    return env
