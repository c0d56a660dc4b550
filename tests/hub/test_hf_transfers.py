"""HFHub against the fake Hub's real transfer paths: LFS to a second host, Xet failing, rate limits."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys

import pytest
from conftest import REPO, child_env, hf_maker
from fake_hf import FakeHub

from l4demons.hub.base import HubUnavailable
from l4demons.hub.retry import RetryPolicy, retry_after_headers


@pytest.fixture
def lfs_fake():
    with FakeHub(lfs=True, multipart_threshold=200_000, chunk_size=64_000) as server:
        yield server


def test_binary_files_go_through_lfs_and_come_back_by_redirect(lfs_fake, tmp_path, write) -> None:
    hub = hf_maker(lfs_fake, tmp_path)()
    small, large = os.urandom(50_000), os.urandom(300_000)  # one PUT; a multipart upload of 5 parts
    info = hub.commit({"model.pt": write("m", small), "replay/1.npz": write("r", large),
                       "metrics.jsonl": write("j", b'{"cycle": 1}\n')}, "c1", None)
    commit = lfs_fake.repos[REPO].commits[info.id]
    assert commit.lfs == {"model.pt", "replay/1.npz"}  # stored as LFS objects; the text file inline
    assert lfs_fake.count("POST", ".git/info/lfs/objects/batch") == 1
    assert lfs_fake.count("PUT", "/lfs-upload/") == 1 + 5 and lfs_fake.count("POST", "/objects/complete/") == 1
    reader = hf_maker(lfs_fake, tmp_path)(cache=tmp_path / "another-machine")
    assert reader.download("model.pt").read_bytes() == small
    assert reader.download("replay/1.npz", info.id).read_bytes() == large
    assert reader.download("metrics.jsonl").read_bytes() == b'{"cycle": 1}\n'
    assert lfs_fake.count("GET", "/lfs-objects/") == 2  # followed the redirect to the storage host...
    assert lfs_fake.leaked_auth == []  # ...without the Hub token
    # Unchanged LFS files are not uploaded again, and an unchanged commit makes no commit.
    again = hub.commit({"model.pt": write("m", small)}, "same", info.id)
    assert again.id == info.id and lfs_fake.count("POST", "/commit/main") == 1


def test_a_failing_lfs_upload_is_hub_unavailable_and_nothing_is_committed(lfs_fake, tmp_path, write) -> None:
    hub = hf_maker(lfs_fake, tmp_path)()
    first = hub.commit({"metrics.jsonl": write("j", b"1\n")}, "c1", None)
    lfs_fake.fail("PUT", "/lfs-upload/", status=400, times=3)  # an expired pre-signed URL, every try
    with pytest.raises(HubUnavailable, match="file transfer failed"):
        hub.commit({"model.pt": write("m", os.urandom(20_000))}, "c2", first.id)
    assert lfs_fake.repos[REPO].main == first.id
    lfs_fake.fail("PUT", "/lfs-upload/", status=400, times=1)  # once: the retry goes through
    second = hub.commit({"model.pt": write("m", os.urandom(20_000))}, "c2", first.id)
    assert lfs_fake.repos[REPO].commits[second.id].parent == first.id


XET_CHILD = """
import json, sys
from l4demons.hub.base import HubUnavailable
from l4demons.hub.hf import HFHub
hub = HFHub("hf://me/l4d", token="hf_write", endpoint=sys.argv[1], cache_dir=sys.argv[2], retries=2, retry_delay=0.01)
open(sys.argv[3], "wb").write(b"\\0binary weights" * 1000)
try:
    hub.commit({"model.pt": sys.argv[3]}, "c1", None)
except HubUnavailable as e:
    print("UNAVAILABLE " + json.dumps(str(e)))
"""


def test_a_failing_xet_upload_is_hub_unavailable(tmp_path) -> None:
    with FakeHub(xet=True) as fake:
        env = child_env(HF_HUB_DISABLE_XET="0", HF_XET_CLIENT_RETRY_MAX_ATTEMPTS="1",
                        HF_XET_CLIENT_RETRY_BASE_DELAY="10ms", HF_XET_CLIENT_RETRY_MAX_DURATION="2s",
                        HF_HOME=str(tmp_path / "home"))
        out = subprocess.run([sys.executable, "-c", XET_CHILD, fake.endpoint, str(tmp_path / "cache"),
                              str(tmp_path / "model.pt")], env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stdout + out.stderr
        assert out.stdout.startswith("UNAVAILABLE"), out.stdout + out.stderr
        assert "file transfer failed" in out.stdout
        assert fake.count("GET", "/xet-write-token/") >= 1  # the upload really went the Xet way
        assert [c.title for c in fake.history(REPO)] == ["initial commit"]


def test_429_waits_as_long_as_the_hub_asks(fake, make_hf, write, caplog) -> None:
    hub = make_hf()
    slept: list[float] = []
    hub.sleep = slept.append  # a fake clock: the waits are recorded, not spent
    first = hub.commit({"metrics.jsonl": write("j", b"1\n")}, "c1", None)
    fake.fail("POST", "/commit/main", status=429, headers={"Retry-After": "1"})
    with caplog.at_level(logging.WARNING, logger="l4demons.hub.hf"):
        second = hub.commit({"metrics.jsonl": write("j", b"2\n")}, "c2", first.id)
    assert slept == [1.0]  # the hint, not the test's 0.01 s back-off
    assert fake.repos[REPO].commits[second.id].parent == first.id
    assert any("retry 1/2 in 1.0s (as the Hub asked)" in r.message for r in caplog.records)


def test_a_wait_longer_than_the_budget_gives_up_at_once(fake, make_hf, write) -> None:
    hub = make_hf()
    slept: list[float] = []
    hub.sleep = slept.append
    first = hub.commit({"metrics.jsonl": write("j", b"1\n")}, "c1", None)
    fake.fail("POST", "/commit/main", status=429, times=5, headers={"RateLimit": '"commits";r=0;t=3000'})
    with pytest.raises(HubUnavailable, match="rate limit") as caught:
        hub.commit({"metrics.jsonl": write("j", b"2\n")}, "c2", first.id)
    assert caught.value.retry_after == 3000 and slept == []  # no wait at all, the budget is 5 s
    assert fake.repos[REPO].main == first.id


def test_back_off_without_a_hint_goes_through_the_injected_sleep(fake, make_hf, write) -> None:
    hub = make_hf()
    slept: list[float] = []
    hub.sleep = slept.append
    first = hub.commit({"metrics.jsonl": write("j", b"1\n")}, "c1", None)
    fake.fail("POST", "/commit/main", status=503, times=2)
    second = hub.commit({"metrics.jsonl": write("j", b"2\n")}, "c2", first.id)
    assert fake.repos[REPO].commits[second.id].parent == first.id
    assert len(slept) == 2 and 0.005 <= slept[0] <= 0.01 and 0.01 <= slept[1] <= 0.02  # 0.01 s, doubled, jittered


def test_the_fake_rate_limits_commits(tmp_path, write) -> None:
    with FakeHub(commit_limit=(2, 60)) as fake:
        hub = hf_maker(fake, tmp_path)()
        c1 = hub.commit({"a.txt": write("a", b"1")}, "c1", None)
        c2 = hub.commit({"a.txt": write("a", b"2")}, "c2", c1.id)
        with pytest.raises(HubUnavailable) as caught:
            hub.commit({"a.txt": write("a", b"3")}, "c3", c2.id)
        assert 50 <= caught.value.retry_after <= 60 and len(fake.rate_limited) == 1


@pytest.mark.parametrize("headers,status,expected", [
    ({"Retry-After": "7"}, 503, 7.0),
    ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 429, 0.0),  # a date in the past: go now
    ({"RateLimit": '"api";r=0;t=55'}, 429, 55.0),
    ({"RateLimit": '"api";r=3;t=55'}, 429, None),  # quota left: the 429 is about something else
    ({"RateLimit": '"api";r=0;t=55'}, 503, None),
    ({}, 429, None),
])
def test_retry_after_headers(headers, status, expected) -> None:
    assert retry_after_headers(headers, status) == expected


def test_an_http_date_is_read_against_the_given_clock() -> None:
    date = {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}  # 1445412480 in Unix time
    assert retry_after_headers(date, 503, now=lambda: 1445412480 - 42.0) == 42.0
    assert retry_after_headers(date, 503, now=lambda: 1445412480 + 1.0) == 0.0


def test_retry_policy_backoff_is_bounded() -> None:
    policy = RetryPolicy(attempts=10, delay=1.0, max_delay=30.0)
    waits = [policy.backoff(k) for k in range(1, 10)]
    assert all(0.5 * min(2 ** (k - 1), 30) <= w <= min(2 ** (k - 1), 30) for k, w in enumerate(waits, 1))
    assert json.dumps(RetryPolicy.from_env(2, 0.5).__dict__)  # plain numbers
