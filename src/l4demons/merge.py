"""The merge policy when another trainer committed first (docs/lifecycle.md, "Several trainers at once").

Both trainers started from the same ``base`` weights. The other one's
result is on the hub (``theirs``); ours is in memory. The merged weights
are ``theirs + 1/2 * (ours - base)``: what is on the hub stays whole
(however many cycles it moved ahead) and our cycle's change is applied on
top of it at half strength, since it was computed against older weights.
Integer buffers (BatchNorm's batch counter) are taken from theirs.
"""

from __future__ import annotations

import torch


def merge_weights(
    theirs: dict[str, torch.Tensor], ours: dict[str, torch.Tensor], base: dict[str, torch.Tensor]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(merged weights, the base to use for a further merge).

    The new base is ``merged - (ours - base)``, so if the commit of the
    merged weights conflicts again, the next merge again adds half of *our*
    delta, once, and none of theirs twice.
    """
    merged: dict[str, torch.Tensor] = {}
    new_base: dict[str, torch.Tensor] = {}
    for k, t in theirs.items():
        if t.is_floating_point() and k in base and k in ours:
            delta = ours[k] - base[k]
            merged[k] = t + 0.5 * delta
            new_base[k] = merged[k] - delta
        else:
            merged[k] = new_base[k] = t
    return merged, new_base
