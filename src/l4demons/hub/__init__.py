"""Checkpoint hubs: a local directory (default) or the Hugging Face Hub."""

from l4demons.hub.base import (
    CommitInfo,
    CorruptFile,
    Hub,
    HubAuthError,
    HubConflict,
    HubError,
    HubNotFound,
    HubUnavailable,
    default_local_hub_path,
    open_hub,
    resolve_hub_uri,
)

__all__ = [
    "CommitInfo",
    "CorruptFile",
    "Hub",
    "HubAuthError",
    "HubConflict",
    "HubError",
    "HubNotFound",
    "HubUnavailable",
    "default_local_hub_path",
    "open_hub",
    "resolve_hub_uri",
]
