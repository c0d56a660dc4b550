"""The hub's ``README.md``: what the model is, how it was trained, how it is doing.

Rewritten on every commit from the training configuration and the metrics
rows, so the card on the Hugging Face Hub always matches the newest cycle.
"""

from __future__ import annotations

import json

from l4demons.network import NetConfig

CARD_FILE = "README.md"


def _num(value: object, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def render_model_card(hub_uri: str, net: NetConfig, config: dict, metrics: list[dict], max_rows: int = 50) -> str:
    """Markdown for the hub's model card (newest cycles first in the table)."""
    latest = metrics[-1] if metrics else {}
    lines = [
        "---",
        "library_name: l4demons",
        "tags: [chess, reinforcement-learning, alphazero, self-play]",
        "---",
        "",
        "# L4Demons chess network",
        "",
        "A chess network that teaches itself by self-play (Gumbel AlphaZero search, residual",
        f"tower {net.name}, policy + win/draw/loss heads), trained with `l4demons train --hub {hub_uri}`.",
        "",
        "Play it: `python serve.py --hub " + hub_uri + "` (HTTP, port 5058) or `l4demons uci --hub " + hub_uri + "`.",
        "Weights are plain tensors: `torch.load('model.pt', weights_only=True)`.",
        "",
        f"- cycles: {latest.get('cycle', 0)}",
        f"- latest Elo: {_num(latest.get('elo'), '.0f') or 'not measured'}"
        + (f" (95% {latest['elo_lo']:.0f}..{latest['elo_hi']:.0f}, {latest.get('elo_games')} games)" if latest.get("elo_lo") is not None else ""),
        f"- training hours: {_num(latest.get('hours'), '.2f') or '0'}",
        "",
        "| cycle | Elo | Elo 95% | train loss | val loss | games | machine |",
        "|---:|---:|:---:|---:|---:|---:|:---|",
    ]
    for row in reversed(metrics[-max_rows:]):
        interval = f"{row['elo_lo']:.0f}..{row['elo_hi']:.0f}" if row.get("elo_lo") is not None else ""
        lines.append(
            f"| {row.get('cycle')} | {_num(row.get('elo'), '.0f')} | {interval} | {_num(row.get('train_loss'), '.4f')} "
            f"| {_num(row.get('val_loss'), '.4f')} | {row.get('games', '')} | {row.get('machine', '')} |"
        )
    lines += ["", "## Configuration", "", "```json", json.dumps(config, indent=2, sort_keys=True, default=str), "```", ""]
    return "\n".join(lines)
