"""Bootstrapping labels that step aside: the material rule ends once the value head knows material.

An untrained net's games rarely end in mate, so self-play ends a game when
one side keeps a large material lead (``SelfPlayConfig.material_win``) and
scores it as a win: a label the value head can learn in minutes. Once the
value head has learned it, the rule only shortens games whose search
already says who is winning, and it hides what comes after (converting a
lead, the counterplay of the side behind). So the trainer watches each
cycle's positions where the rule's lead holds: when the search value of
those positions agrees with the lead (``value * sign(lead) >= AGREE``) in at
least ``material_trust`` of them, over a decayed count of at least
:data:`MIN_CHECKS` positions, the rule is switched off for later cycles;
resignation, whose own false-positive check guards it, takes over ending
lost games. The length cap's adjudication stays: games must end.

Only quiet leads count: positions whose material stays the same over the
next two plies (no capture by either side). In the middle of an exchange
the side to move is often a piece "behind" that it takes back at once, and
there a search value near 0 is right, not a disagreement; counted, such
positions kept the agreement under 90% whatever the value head learned.

Resignation is trusted the same way (KataGo and Lc0 check it alike): only
once enough played-out games show that the side that would have resigned
went on to lose (:func:`note_resign_checks`). :func:`selfplay_config` is
each cycle's self-play configuration under both checks.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from l4demons.checkpoint import TrainingState
from l4demons.encoding import material_lead
from l4demons.selfplay import SelfPlayConfig

log = logging.getLogger("l4demons.train")

AGREE = 0.5
"""A search value at least this far on the leader's side counts as agreeing with the lead."""
MIN_CHECKS = 200.0
"""Decayed positions needed before the rule may switch off."""
DECAY = 0.8
"""Older cycles' positions count this much less each cycle (the value head changes)."""
RESIGN_MIN_CHECKS = 10
"""Played-out games that would have resigned, before resigning is trusted."""
RESIGN_MAX_FALSE = 0.05
"""...and at most this share of them not lost."""


def quiet(lead: np.ndarray, game_offsets: np.ndarray) -> np.ndarray:
    """Bool ``[n]``: the side to move's lead is unchanged two plies on, in the same game (no capture in between)."""
    n = len(lead)
    same = np.zeros(n, bool)
    same[:-2] = (lead[1:-1] == -lead[:-2]) & (lead[2:] == lead[:-2])
    for end in game_offsets[1:]:  # the last two positions of a game have no two plies after them
        same[max(end - 2, 0):end] = False
    return same


def agreement_counts(records: np.ndarray, values: np.ndarray, lead_pawns: int,
                     game_offsets: np.ndarray | None = None) -> tuple[int, int]:
    """(quiet positions with a lead of at least ``lead_pawns`` either way, of which the search value agrees).

    ``game_offsets`` (``[games + 1]``, as in a replay chunk) marks where games end; without it every
    decisive position counts, quiet or not.
    """
    lead = material_lead(records)
    decisive = np.abs(lead) >= lead_pawns
    if game_offsets is not None:
        decisive &= quiet(lead, game_offsets)
    agree = values.astype(np.float32)[decisive] * np.sign(lead[decisive]) >= AGREE
    return int(decisive.sum()), int(agree.sum())


def update(checks: float, agreed: float, new_checks: int, new_agreed: int) -> tuple[float, float]:
    """Decayed running counts."""
    return DECAY * checks + new_checks, DECAY * agreed + new_agreed


def rule_retired(checks: float, agreed: float, trust: float) -> bool:
    """Whether the value head agrees with material leads often enough to drop the rule."""
    return trust <= 1.0 and checks >= MIN_CHECKS and agreed >= trust * checks


def selfplay_config(cfg: SelfPlayConfig, st: TrainingState) -> SelfPlayConfig:
    """This cycle's self-play: resignation only once trusted, the material rule only until retired."""
    trusted = st.resign_checks >= RESIGN_MIN_CHECKS and st.false_resigns <= RESIGN_MAX_FALSE * st.resign_checks
    if not trusted:
        cfg = dataclasses.replace(cfg, resign_playthrough=1.0)
    if st.material_retired and not cfg.play_on_simulations:  # with play-on the rule ends no game: nothing to retire
        cfg = dataclasses.replace(cfg, material_win=0)
    return cfg


def note_resign_checks(st: TrainingState, games: list, cfg: SelfPlayConfig) -> None:
    """Count this cycle's played-out games that would have resigned, and those that did not lose."""
    st.resign_checks = DECAY * st.resign_checks + sum(g.would_resign for g in games)
    st.false_resigns = DECAY * st.false_resigns + sum(g.false_resign for g in games)
    if st.resign_checks:
        log.info("[TRAIN] resignation check: %.0f%% false over %.0f recent played-out games (resigning %s)",
                 100 * st.false_resigns / st.resign_checks, st.resign_checks,
                 "on" if selfplay_config(cfg, st).resign_playthrough < 1.0 else "off")


def note_material_leads(st: TrainingState, chunk, lead: int, trust: float, play_on: bool = False) -> None:
    """Check this cycle's quiet decisive leads (a replay chunk) against their search values; retire the rule.

    With ``play_on`` the agreement is still counted (the metrics' ``material_agreement``), but the rule,
    which then ends no game, does not retire.
    """
    if chunk is None or lead <= 0 or st.material_retired:
        return
    st.material_checks, st.material_agreed = update(
        st.material_checks, st.material_agreed,
        *agreement_counts(chunk.positions, chunk.values, lead, chunk.game_offsets))
    if not play_on and rule_retired(st.material_checks, st.material_agreed, trust):
        st.material_retired = True
        log.info("[TRAIN] the search now agrees with %.0f%% of quiet decisive material leads: the material rule "
                 "retires, games play on to mate, resignation or the length cap",
                 100 * st.material_agreed / st.material_checks)
