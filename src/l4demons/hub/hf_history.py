"""The history of a Hugging Face repository's ``main`` (mixed into :class:`HFHub`).

The Hub lists commits newest first, a page at a time, with a ``Link``
header to the next page; only the pages that hold the commits asked for are
read, so a resume (the newest few commits) costs one request however long
the history. A commit's parent is the next commit of the list.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime

import httpx2
from huggingface_hub.utils import build_hf_headers, get_session, hf_raise_for_status

from l4demons.hub.base import CommitInfo, HubNotFound
from l4demons.hub.hf_errors import RepoMissing

_SHA1 = re.compile(r"[0-9a-f]{40}")
_HEX = re.compile(r"[0-9a-f]{4,40}")


class HFHistoryMixin:
    """Commit lists of an :class:`HFHub`."""

    uri: str
    repo_id: str
    endpoint: str
    _token: str | None
    _call: Callable

    def history(self, limit: int | None = None) -> list[CommitInfo]:
        """Commits of ``main``, newest first (``files`` left empty: one request per commit otherwise).

        With ``limit``, only the pages of the Hub's commit list that hold them are read.
        """
        try:
            return self._commits("main", limit)
        except RepoMissing:
            return []

    def _commits(self, revision: str, limit: int | None) -> list[CommitInfo]:
        """Commits from ``revision`` back, newest first, following the Hub's pagination as far as needed."""
        url: str | None = f"{self.endpoint}/api/models/{self.repo_id}/commits/{revision}"
        items: list[dict] = []
        while url is not None and (limit is None or len(items) <= limit):
            response = self._call("list commits", functools.partial(self._get, url))
            items.extend(response.json())
            url = response.links.get("next", {}).get("url")
        keep = items if limit is None else items[:limit]
        return [
            CommitInfo(
                id=item["id"],
                message=item["title"] + (f"\n\n{item['message'].strip()}" if (item.get("message") or "").strip() else ""),
                parent=items[i + 1]["id"] if i + 1 < len(items) else None,
                created_at=_timestamp(item["date"]),
            )
            for i, item in enumerate(keep)
        ]

    def _commit_info(self, revision: str) -> CommitInfo:
        try:
            found = self._commits(revision, 1)
        except RepoMissing:
            raise
        except HubNotFound as err:
            raise HubNotFound(f"No commit {revision!r} in {self.uri}. See `l4demons history`.") from err
        if not found:
            raise HubNotFound(f"No commit {revision!r} in {self.uri}. See `l4demons history`.")
        return found[0]

    def _resolve(self, revision: str) -> str:
        """A full commit id from an id, a unique hex prefix, or a branch name."""
        if _SHA1.fullmatch(revision) or not _HEX.fullmatch(revision):
            return revision
        matches = [c.id for c in self._commits("main", None) if c.id.startswith(revision)]  # a missing repo says so
        if len(matches) != 1:
            what = "is ambiguous" if matches else "matches no commit"
            raise HubNotFound(f"Revision {revision!r} {what} in {self.uri}. See `l4demons history`.")
        return matches[0]

    def _get(self, url: str) -> httpx2.Response:
        response = get_session().get(url, headers=build_hf_headers(token=self._token, library_name="l4demons"))
        hf_raise_for_status(response)
        return response


def _timestamp(date: str) -> float:
    return datetime.fromisoformat(date.replace("Z", "+00:00")).timestamp()
