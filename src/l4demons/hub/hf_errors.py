"""What a failure of ``huggingface_hub`` (or of the transfer libraries under it) means for a hub user.

:func:`translate` maps the client's exceptions to ours:

- network errors, HTTP 408/429/5xx, and any failure of a file transfer
  (the LFS upload wraps its errors in a ``RuntimeError``; the Rust Xet
  library raises ``RuntimeError`` or a builtin ``ConnectionError``) mean
  the hub is unavailable for now: :class:`HubUnavailable`, retried, then
  the trainer queues the commit in its outbox;
- 401/403 and gated repositories: :class:`HubAuthError` (a retry would not help);
- 404s: :class:`HubNotFound` (a missing repository reads as an empty hub);
- 412: :class:`HubConflict` (another machine committed first).

Anything else that is not a Hub error (a bug, a bad argument) is not
translated and propagates as it is.
"""

from __future__ import annotations

import dataclasses

import httpx2
from huggingface_hub import get_token
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from l4demons.hub.base import HubAuthError, HubConflict, HubError, HubNotFound, HubUnavailable

RETRY_STATUS = (408, 429, 500, 502, 503, 504)
"""HTTP statuses worth another try."""


class RepoMissing(HubNotFound):
    """The repository does not exist (or this token cannot see it)."""


@dataclasses.dataclass(frozen=True)
class Where:
    """The hub a failure happened on, for messages that say what to do."""

    uri: str
    repo_id: str
    endpoint: str
    token: str | None


def is_transfer_failure(err: BaseException) -> bool:
    """A failed upload or download of file contents (LFS or Xet), whatever the library raised."""
    if isinstance(err, (NotImplementedError, RecursionError)):
        return False
    return isinstance(err, (RuntimeError, ConnectionError, TimeoutError))


def translate(err: BaseException, what: str, where: Where) -> HubError | None:
    """Our exception for a huggingface_hub/httpx2/hf_xet one (None: not a Hub failure)."""
    at = f"{what} on {where.uri}"
    if isinstance(err, HubError):
        return err
    if isinstance(err, OfflineModeIsEnabled):
        return HubUnavailable(f"Cannot {at}: HF_HUB_OFFLINE is set. Unset it to reach the Hub.")
    if isinstance(err, httpx2.TransportError):
        return HubUnavailable(f"Cannot {at}: {where.endpoint} is unreachable ({reason(err)}).")
    if isinstance(err, LocalEntryNotFoundError):
        return HubUnavailable(f"Cannot {at}: the Hub is unreachable and nothing is cached.")
    if isinstance(err, RevisionNotFoundError):
        return HubNotFound(f"Cannot {at}: revision not found. See `l4demons history`.")
    if isinstance(err, RemoteEntryNotFoundError):
        return HubNotFound(f"Cannot {at}: file not found.")
    if isinstance(err, GatedRepoError):
        return HubAuthError(f"Cannot {at}: the repository is gated; request access on the Hub.")
    if isinstance(err, RepositoryNotFoundError):
        return RepoMissing(
            f"Cannot {at}: repository {where.repo_id} not found, or this token cannot see it. "
            "Check the name, and set HF_TOKEN (or run `hf auth login`) with a token that can read it."
        )
    if not isinstance(err, HfHubHTTPError):
        if is_transfer_failure(err):
            return HubUnavailable(f"Cannot {at}: a file transfer failed ({reason(err)}). Retry later.")
        return None
    status = err.response.status_code
    if status == 401 and not (where.token or get_token()):
        return HubAuthError(
            f"Cannot {at}: no Hugging Face token (HTTP 401). Set HF_TOKEN (or run `hf auth login`) "
            f"to a token with write access to {where.repo_id}."
        )
    if status == 401:
        return HubAuthError(
            f"Cannot {at}: the Hub rejected the token (HTTP 401). Set HF_TOKEN (or run `hf auth login`) "
            f"to a valid token with write access to {where.repo_id}."
        )
    if status == 403:
        return HubAuthError(
            f"Cannot {at}: the token lacks the access needed (HTTP 403). Use a token with write access "
            f"to {where.repo_id} (https://huggingface.co/settings/tokens) in HF_TOKEN."
        )
    if status == 404:
        return HubNotFound(f"Cannot {at}: not found (HTTP 404).")
    if status == 412:
        return HubConflict(f"{where.uri} moved since the parent commit (HTTP 412). Pull the new head, merge and retry.")
    if status == 429:
        return HubUnavailable(f"Cannot {at}: the Hub's rate limit is reached (HTTP 429). Retry later.")
    if status in RETRY_STATUS:
        return HubUnavailable(f"Cannot {at}: the Hub answered HTTP {status}. Retry later.")
    return HubError(f"Cannot {at}: HTTP {status}: {err.server_message or err}")


def retryable(err: BaseException) -> bool:
    """Whether another try of the same call may succeed (our own exceptions are final)."""
    if isinstance(err, (OfflineModeIsEnabled, HubError)):
        return False
    if isinstance(err, httpx2.TransportError):
        return True
    if isinstance(err, HfHubHTTPError):
        return err.response.status_code in RETRY_STATUS
    return is_transfer_failure(err)


def reason(err: BaseException) -> str:
    """A short account of a failure for log lines."""
    if isinstance(err, HfHubHTTPError):
        return f"HTTP {err.response.status_code}"
    text = str(err).splitlines()[0] if str(err) else ""
    if isinstance(err, RuntimeError) and err.__cause__ is not None:  # the LFS upload wraps the real failure
        text = f"{text}: {reason(err.__cause__)}"
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
