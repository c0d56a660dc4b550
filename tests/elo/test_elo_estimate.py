"""The per-cycle estimate, the on-demand measurement, head-to-head and the report."""

from __future__ import annotations

import io
import math
import sys

import chess.pgn
import pytest

from l4demons.elo.anchors import Anchor, AnchorSet
from l4demons.elo.errors import BadTimeControl, PlotUnavailable
from l4demons.elo.estimate import apply_tc, format_table, full_measurement, quick_estimate
from l4demons.elo.h2h import format_head_to_head, head_to_head
from l4demons.elo.players import PlayerSpec
from l4demons.elo.report import draw_report

# Cheap anchors only (no Stockfish), with made-up but ordered ratings.
LADDER = AnchorSet((
    Anchor(PlayerSpec.random(), 0.0, -50.0, 50.0, "measured"),
    Anchor(PlayerSpec.material().with_noise(0.5), 350.0, 300.0, 400.0, "measured"),
    Anchor(PlayerSpec.material(), 550.0, 500.0, 600.0, "measured"),
), {})


def test_quick_estimate_plays_pairs_against_the_nearest_anchors(tmp_path) -> None:
    est = quick_estimate(PlayerSpec.material(), prior_elo=None, anchors=LADDER, max_games=8, workers=0,
                         time_budget_s=60, pgn_path=tmp_path / "q.pgn")
    assert est.games == 8 == sum(r.games for r in est.per_opponent)
    assert est.lo < est.elo < est.hi and math.isfinite(est.elo)
    assert est.per_opponent[0].name == "random"  # no prior: start at the weakest anchor
    assert all(r.games % 2 == 0 for r in est.per_opponent)  # colour-swapped pairs
    assert est.label == f"Elo ~{est.elo:.0f}"
    assert set(est.as_metrics()) == {"elo", "elo_lo", "elo_hi", "elo_games", "elo_pooled_games", "elo_seconds"}
    text = (tmp_path / "q.pgn").read_text()
    assert text.count("[Event ") == 8
    assert chess.pgn.read_game(io.StringIO(text)) is not None


class StepClock:
    """A fake clock: every reading is ``step`` seconds after the one before."""

    def __init__(self, step: float) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


def test_quick_estimate_keeps_its_time_budget() -> None:
    """On a clock read once per game started (plus the start and the end), a 1.5 s budget at 0.25 s a reading
    starts games only while the clock has not reached the deadline (games here take milliseconds)."""
    clock = StepClock(0.25)
    est = quick_estimate(PlayerSpec.material(), prior_elo=500, anchors=LADDER, max_games=10_000,
                         time_budget_s=1.5, workers=0, clock=clock)
    assert 0 < est.games < 10
    assert est.seconds <= 1.5 + 2 * clock.step  # no game starts past the deadline
    assert {r.name for r in est.per_opponent} <= {"material", "material~r0.5"}  # nearest to the prior


def test_full_measurement_table_and_pgn(tmp_path) -> None:
    est = full_measurement(PlayerSpec.material(), games=6, tc="depth=1", pgn_path=tmp_path / "full.pgn",
                           prior_elo=400, anchors=LADDER, workers=2)
    assert est.games == 6
    assert len(est.per_opponent) == 3  # spread over the three nearest
    table = format_table(est)
    for row in est.per_opponent:
        assert row.name in table
    assert "Elo" in table and "games written to" in table
    assert (tmp_path / "full.pgn").read_text().count("[Result ") == 6


def test_apply_tc() -> None:
    assert apply_tc(PlayerSpec.net("m.pt", nodes=100), "800").param("nodes") == 800
    assert apply_tc(PlayerSpec.net("m.pt"), "nodes=64").param("nodes") == 64
    sf = apply_tc(PlayerSpec.stockfish(elo=1500), "0.05s")
    assert sf.param("time") == 0.05 and sf.param("elo") == 1500
    assert apply_tc(PlayerSpec.stockfish(elo=1500, depth=3), "depth=5").param("depth") == 5
    timed = apply_tc(PlayerSpec.net("m.pt", nodes=100), "time=0.5")
    assert timed.param("time") == 0.5 and timed.param("nodes") is None and timed.name == "net:m.pt@0.5s"
    with pytest.raises(BadTimeControl, match="nodes or time"):
        apply_tc(PlayerSpec.net("m.pt"), "depth=3")
    with pytest.raises(BadTimeControl, match="positive"):
        apply_tc(PlayerSpec.net("m.pt"), "nodes=0")
    with pytest.raises(ValueError, match="not a number"):
        apply_tc(PlayerSpec.net("m.pt"), "nodes=lots")
    with pytest.raises(ValueError, match="use nodes"):
        apply_tc(PlayerSpec.net("m.pt"), "moves=40")


def test_head_to_head_sprt_says_h1_for_a_clearly_stronger_player(tmp_path) -> None:
    h2h = head_to_head(PlayerSpec.material(), PlayerSpec.random(), elo0=0, elo1=100, max_games=60, workers=0,
                       pgn_path=tmp_path / "h2h.pgn")
    assert h2h.verdict == "H1"
    assert h2h.match.games < 60  # stopped early
    assert h2h.llr >= h2h.bounds[1]
    assert h2h.los > 0.99 and h2h.elo.elo > 100
    assert "H1 accepted" in format_head_to_head(h2h)
    with pytest.raises(ValueError):
        head_to_head(PlayerSpec.material(), PlayerSpec.random(), elo0=10, elo1=0)


def test_report_draws_a_png(tmp_path) -> None:
    pytest.importorskip("matplotlib")
    rows = [{"cycle": i, "hours": 0.5 * i, "elo": 100.0 * i, "elo_lo": 100.0 * i - 80, "elo_hi": 100.0 * i + 90,
             "train_loss": 5 - 0.3 * i, "val_loss": 5.2 - 0.3 * i} for i in range(1, 6)]
    rows.append({"cycle": 6, "hours": 3.0, "train_loss": 3.0})  # no Elo this cycle
    out = draw_report(rows, tmp_path / "report.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp"))


def test_report_without_matplotlib_says_how_to_install(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(PlotUnavailable, match="pip install matplotlib"):
        draw_report([], tmp_path / "r.png")


def test_no_games_means_no_number() -> None:
    est = quick_estimate(PlayerSpec.material(), prior_elo=math.nan, anchors=LADDER, time_budget_s=0, workers=0)
    assert est.games == 0 and math.isnan(est.elo)
    assert est.as_metrics()["elo"] is None and est.as_metrics()["elo_games"] == 0


def test_pooled_estimate_holds_a_known_rating_and_narrows() -> None:
    # The calibrated ladder's cheap rungs; the candidate is a player the ladder measured (material~r0.5),
    # absent from its own opponents: its rating is known, within the anchors' errors.
    from l4demons.elo.anchors import load_anchors
    from l4demons.lifecycle.measure import decayed_pool

    calibrated = {a.name: a for a in load_anchors().anchors}
    truth = calibrated["material~r0.5"].elo
    ladder = AnchorSet(tuple(calibrated[n] for n in ("random", "material~r0.75", "material")), {})
    candidate = PlayerSpec.material().with_noise(0.5)
    pool: dict = {}
    widths = []
    elo = None
    for cycle in range(4):  # four cycles of six new games, earlier games decayed by 0.6
        est = quick_estimate(candidate, prior_elo=elo, pool=pool, anchors=ladder, max_games=6, workers=0,
                             max_plies=200, seed=cycle)
        assert est.games == 6 and est.pooled_games == pytest.approx(sum(sum(c) for c in pool.values()))
        assert est.lo <= truth <= est.hi, (cycle, est.elo, est.lo, est.hi)
        widths.append(est.hi - est.lo)
        elo = est.elo
        pool = decayed_pool(pool, est.tally(), 0.6)
    assert widths[-1] < widths[0]  # pooling: a tighter interval from the same new games a cycle
