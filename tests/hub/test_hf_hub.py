"""HFHub against the fake Hub: auth, missing repos, retries, offline fallback, conflicts under load."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, child_env

from l4demons.hub.base import CorruptFile, HubAuthError, HubConflict, HubError, HubNotFound, HubUnavailable
from l4demons.hub.hf import HFHub

WORKER = str(Path(__file__).with_name("hub_worker.py"))


def test_bad_uri() -> None:
    for uri in ("hf://", "hf://only-owner", "hf://a/b/c", "owner/repo"):
        with pytest.raises(HubError, match="hf://owner/repo"):
            HFHub(uri)


def test_first_commit_creates_a_private_repo(fake, make_hf, write) -> None:
    hub = make_hf()
    assert REPO not in fake.repos
    info = hub.commit({"model.pt": write("m", b"w0")}, "Initial model weights (randomly initialized)", None)
    repo = fake.repos[REPO]
    first = next(c for c in repo.commits.values() if c.parent is None)
    assert info.parent == first.id  # the Hub's own "initial commit" is adopted as the parent
    assert set(info.files) == {".gitattributes", "model.pt"}
    assert fake.count("POST", "/api/repos/create") == 1
    hub.commit({"model.pt": write("m", b"w1")}, "c2", info.id)
    assert fake.count("POST", "/api/repos/create") == 1  # only when the hub looked empty


def test_repo_with_only_the_initial_commit_reads_as_empty(fake, make_hf, write) -> None:
    fake.create_repo(REPO)
    hub = make_hf()
    head = hub.head()
    assert head is not None
    assert hub.list_files() == [".gitattributes"]
    assert hub.download("model.pt") is None
    info = hub.commit({"model.pt": write("m", b"w")}, "Initial", None)
    assert info.parent == head


def test_invalid_token_is_an_auth_error(fake, make_hf, write) -> None:
    fake.create_repo(REPO)
    hub = make_hf(token="hf_bogus")
    with pytest.raises(HubAuthError, match="HF_TOKEN") as caught:
        hub.head()
    assert "401" in str(caught.value)
    with pytest.raises(HubAuthError):
        hub.commit({"model.pt": write("m", b"w")}, "c", make_hf().head())


def test_read_only_token_reads_but_cannot_write(fake, make_hf, write) -> None:
    writer = make_hf()
    first = writer.commit({"model.pt": write("m", b"w")}, "c1", None)
    reader = make_hf(token="hf_read")
    assert reader.head() == first.id
    assert reader.download("model.pt").read_bytes() == b"w"
    with pytest.raises(HubAuthError, match="write access") as caught:
        reader.commit({"model.pt": write("m", b"x")}, "c2", first.id)
    assert "403" in str(caught.value)
    assert writer.head() == first.id
    # A read-only token cannot create the repo either.
    with pytest.raises(HubAuthError, match="write access"):
        make_hf(token="hf_read", repo="me/other").commit({"model.pt": write("m", b"x")}, "c", None)
    assert "me/other" not in fake.repos


def test_missing_repo_reads_empty_but_named_revisions_are_not_found(fake, make_hf) -> None:
    hub = make_hf(repo="me/missing")
    assert hub.head() is None
    assert hub.list_files() == []
    assert hub.history() == []
    assert hub.download("model.pt") is None
    with pytest.raises(HubNotFound):
        hub.download("model.pt", revision="a" * 40)
    with pytest.raises(HubNotFound):
        hub.list_files(revision="a" * 40)
    with pytest.raises(HubNotFound):
        hub.rollback("a" * 40)
    assert "me/missing" not in fake.repos  # reading never creates


def test_server_errors_are_retried(fake, make_hf, write, caplog) -> None:
    hub = make_hf()
    first = hub.commit({"model.pt": write("m", b"w")}, "c1", None)
    fake.fail("GET", f"/api/models/{REPO}", status=503, times=2)
    with caplog.at_level(logging.WARNING, logger="l4demons.hub.hf"):
        assert hub.head() == first.id
    assert sum("[HF] read the head failed (HTTP 503); retry" in r.message for r in caplog.records) == 2
    fake.fail("POST", "/commit/main", status=502, times=1)
    second = hub.commit({"model.pt": write("m", b"w2")}, "c2", first.id)
    assert [c.message for c in hub.history()[:2]] == ["c2", "c1"]
    assert hub.head() == second.id
    fake.fail("GET", f"/api/models/{REPO}", status=503, times=3)  # = retries: give up
    with pytest.raises(HubUnavailable, match="503"):
        hub.head()


def test_commit_whose_answer_was_lost_is_not_duplicated(fake, make_hf, write) -> None:
    hub = make_hf()
    first = hub.commit({"model.pt": write("m", b"w")}, "c1", None)
    fake.fail("POST", "/commit/main", status=503, times=1, after=True)  # applied, answer lost
    second = hub.commit({"model.pt": write("m", b"w2")}, "c2", first.id)
    assert hub.head() == second.id and second.parent == first.id and second.message == "c2"
    assert [c.message for c in hub.history()[:3]] == ["c2", "c1", "initial commit"]


def test_unchanged_files_with_a_stale_parent_still_conflict(fake, make_hf, write) -> None:
    hub = make_hf()
    first = hub.commit({"model.pt": write("m", b"w")}, "c1", None)
    second = hub.commit({"metrics.jsonl": write("j", b"1\n")}, "c2", first.id)
    # Same bytes as the head: the client skips the request, which must not hide the stale parent.
    with pytest.raises(HubConflict) as caught:
        hub.commit({"model.pt": write("m", b"w")}, "stale", first.id)
    assert caught.value.head == second.id
    same = hub.commit({"model.pt": write("m", b"w")}, "nothing new", second.id)
    assert same.id == second.id and hub.head() == second.id


def test_unreachable_hub_falls_back_to_cached_download(fake, make_hf, write, tmp_path, caplog) -> None:
    writer = make_hf(cache=tmp_path / "another-machine")
    first = writer.commit({"model.pt": write("m", b"weights"), "metrics.jsonl": write("j", b"1\n")}, "c1", None)
    hub = make_hf()
    assert hub.download("model.pt").read_bytes() == b"weights"
    fake.stop()
    restarted = make_hf()  # a new run on the same machine: same cache, no network
    with caplog.at_level(logging.WARNING, logger="l4demons.hub.hf"):
        path = restarted.download("model.pt")
    assert path.read_bytes() == b"weights"
    lines = [r.message for r in caplog.records if "[HF] hub unreachable, using cached model.pt" in r.message]
    assert len(lines) == 1 and first.id[:8] in lines[0]
    assert restarted.download("model.pt", revision=first.id).read_bytes() == b"weights"
    with pytest.raises(HubUnavailable):  # never downloaded here
        restarted.download("metrics.jsonl")
    with pytest.raises(HubUnavailable):
        restarted.head()
    with pytest.raises(HubUnavailable):
        restarted.commit({"model.pt": write("m", b"w2")}, "c2", first.id)


def test_own_commits_are_cached_for_an_offline_start(fake, make_hf, write, caplog) -> None:
    hub = make_hf()
    first = hub.commit({"model.pt": write("m", b"w1"), "replay/1.npz": write("r", b"r1")}, "c1", None)
    second = hub.commit({"model.pt": write("m", b"w2"), "metrics.jsonl": write("j", b"2\n")}, "c2", first.id)
    fake.stop()
    restarted = make_hf()
    assert restarted.cached_head() == second.id  # the newest commit made here, never downloaded
    with caplog.at_level(logging.WARNING, logger="l4demons.hub.hf"):
        assert restarted.download("model.pt").read_bytes() == b"w2"
    assert sum("[HF] hub unreachable" in r.message for r in caplog.records) == 1
    # Pinned downloads of cached files need no network; carried-over files are there too.
    assert restarted.download("replay/1.npz", second.id).read_bytes() == b"r1"
    assert restarted.download("metrics.jsonl", second.id).read_bytes() == b"2\n"
    assert restarted.download("model.pt", first.id).read_bytes() == b"w1"


def test_the_cache_keeps_only_the_newest_own_commits(fake, make_hf, write, tmp_path) -> None:
    hub = make_hf()
    parent = None
    for i in range(5):
        parent = hub.commit({"model.pt": write("m", b"w%d" % i), "metrics.jsonl": write("j", b"%d\n" % i)}, f"c{i}",
                            parent and parent.id)
    storage = tmp_path / "hf-cache" / "models--me--l4d"
    assert len(list((storage / "snapshots").iterdir())) == 2
    assert len(list((storage / "blobs").iterdir())) == 4  # model and metrics of the newest two
    fake.stop()
    assert make_hf().download("model.pt").read_bytes() == b"w4"


def test_commit_title_and_description(fake, make_hf, write) -> None:
    hub = make_hf()
    message = "Training cycle 1, Elo ~n/a, Loss 4.0\n\nBest model - cycle 1, loss=4.0, Elo ~n/a"
    info = hub.commit({"model.pt": write("m", b"w")}, message, None)
    commit = fake.repos[REPO].commits[info.id]
    assert commit.title == "Training cycle 1, Elo ~n/a, Loss 4.0"
    assert commit.description == "Best model - cycle 1, loss=4.0, Elo ~n/a"
    assert hub.history()[0].message == message and info.message == message


def test_nothing_cached_and_unreachable(make_hf, fake) -> None:
    fake.stop()
    with pytest.raises(HubUnavailable, match="unreachable"):
        make_hf().download("model.pt")


def test_corrupt_download_is_not_kept(fake, make_hf, write, tmp_path) -> None:
    make_hf(cache=tmp_path / "another-machine").commit({"model.pt": write("m", b"weights" * 1000)}, "c1", None)
    hub = make_hf()
    fake.corrupt.add("model.pt")
    with pytest.raises(CorruptFile, match="sha256"):
        hub.download("model.pt")
    downloads = fake.count("GET", "/lfs-objects/") if fake.lfs_mode else fake.count("GET", "/resolve/")
    assert downloads == 2  # downloaded again once before refusing
    fake.corrupt.clear()
    assert hub.download("model.pt").read_bytes() == b"weights" * 1000


@pytest.mark.parametrize("name", ["model.pt", "metrics.jsonl"])
def test_corrupt_cache_entry_is_downloaded_again(fake, make_hf, write, name: str) -> None:
    hub = make_hf()
    hub.commit({name: write("m", b"good bytes")}, "c1", None)
    blob = Path(os.path.realpath(hub.download(name)))
    blob.write_bytes(b"bad  bytes")  # bit rot in the cache, same size
    assert hub.download(name).read_bytes() == b"good bytes"


def test_rollback_copies_server_side(fake, make_hf, write) -> None:
    hub = make_hf()
    c1 = hub.commit({"model.pt": write("m", b"good"), "metrics.jsonl": write("j", b"1\n")}, "Training cycle 1", None)
    hub.commit({"model.pt": write("m", b"bad")}, "Training cycle 2", c1.id)
    rolled = hub.rollback(c1.id)
    commit = fake.repos[REPO].commits[rolled.id]
    assert commit.files["model.pt"] == b"good" and commit.files["metrics.jsonl"] == b"1\n"
    assert fake.count("POST", "/preupload/") == 2  # no upload for the rollback: copies only


def test_two_processes_share_the_fake_and_lose_nothing(fake, tmp_path) -> None:
    n = 6
    env = child_env(HF_ENDPOINT=fake.endpoint, HF_TOKEN="hf_write", HF_HUB_CACHE=str(tmp_path / "cache"))
    uri = f"hf://{REPO}"
    procs = [
        subprocess.Popen(
            [sys.executable, WORKER, "commits", uri, tag, str(n)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        for tag in ("a", "b")
    ]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    for p in procs:
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0 and out.startswith("done"), out
    files = set(fake.repos[REPO].commits[fake.repos[REPO].main].files)
    assert files == {".gitattributes"} | {f"{t}-{i}.txt" for t in "ab" for i in range(n)}
    titles = [c.title for c in fake.repos[REPO].commits.values()]
    assert sorted(titles) == sorted(["initial commit"] + [f"{t} commit {i}" for t in "ab" for i in range(n)])
