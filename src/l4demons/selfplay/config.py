"""What self-play plays: :class:`SelfPlayConfig`, and :func:`game_starts`, where each game begins.

Both implementations (:mod:`.reference` and :mod:`.compiled`) take the same
config and the same starts, so they play the same games for the same seed.
"""

from __future__ import annotations

import dataclasses

import chess

from l4demons import endgames, odds


@dataclasses.dataclass(frozen=True)
class SelfPlayConfig:
    simulations: int = 32
    """Simulations of a full search (its moves become policy targets)."""
    fast_simulations: int = 8
    """Simulations of a fast search (playout-cap randomisation)."""
    full_search_prob: float = 0.25
    """Probability that a move gets the full search."""
    max_considered: int = 16
    """Root actions of Gumbel sequential halving."""
    max_plies: int = 300
    """Game length cap (plies)."""
    adjudicate_material: int = 3
    """At the length cap, a lead of this many pawns wins; 0 scores every capped game a draw."""
    material_win: int = 5
    """A lead of this many pawns held for --material-win-plies plies wins the game; 0 disables it."""
    material_win_plies: int = 10
    """Plies a lead of --material-win pawns must be held to win the game."""
    resign_threshold: float = -0.9
    """Resign when the search value stays below this; -1 disables resignation."""
    resign_moves: int = 3
    """Resign after this many consecutive own moves below --resign-threshold."""
    resign_playthrough: float = 0.1
    """Fraction of games that never resign, to measure false resignations."""
    draw_threshold: float = 0.0
    """Adjudicate a draw when |value| stays below this; 0 disables it."""
    draw_min_ply: int = 120
    """No draw adjudication before this ply."""
    draw_plies: int = 16
    """Adjudicate a draw after this many consecutive plies below --draw-threshold."""
    concurrent_games: int = 32
    """Games in flight per process (their leaves share network calls)."""
    endgame_share: float = 0.0
    """Share of games that start from a simple won ending (KQvK, KRvK, KBBvK...) and play to mate or a rule of
    chess: no material rule, no resignation (l4demons.endgames; 0.1 against 0: -17 and -23 Elo in a 30- and a
    45-minute arms run, README)."""
    odds_share: float = 0.1
    """Share of games that start from the initial position a piece short (a queen, rook, bishop or knight of
    either side) and play by the usual rules, so that the value of material in the opening is in the data
    (l4demons.odds; 0.1 against 0: +176 and +61 Elo in two 30-minute runs, README)."""
    sample_plies: int = 300
    """Moves before this ply are sampled (the search's Gumbel noise picks among good moves), later ones are the
    search's best (--max-plies or more: every move sampled; 30 measured even with that in 220 games, README)."""
    play_on_simulations: int = 4
    """Once --material-win says a game is decided, play it on with searches of this many simulations (never a full
    search: those positions teach the value head only) to mate, stalemate, a rule of chess or the length cap, with
    no resignation; 0 ends it as a win by material instead (4 against 0: +44 and +45 Elo in two 30-minute runs,
    README)."""
    play_on_noise: float = 1.0
    """Scale of the Gumbel noise that samples the moves of a played-on game: 1 as before the decision, 0 the
    search's best move (past --sample-plies every move is the search's best anyway). 0 against 1: -38 Elo [-85, +8]
    in a 45-minute arms run, with the leader of an 8-pawn lead winning 55% of such games against 51% (README)."""
    play_on_plies: int = 0
    """Most plies a decided game plays on: then the length cap's rule scores it (a lead of --adjudicate-material
    pawns wins, a smaller one draws), so a lead the cheap play-on neither converts nor loses stays a win and the
    window holds fewer played-on positions; 0: on to --max-plies. 40 and 80 against 0: -23 and -9 Elo in a
    45-minute arms run, though at 40 the value head priced a queen at +0.53 against +0.29 (README)."""
    rescore_known_wins: bool = False
    """A game that reaches a queen or a rook against a bare king is scored as the stronger side's win, whatever
    its play-on made of it (l4demons.rescore: Lc0's tablebase rescoring, for the one ending that needs no table;
    +73 and -53 Elo in two 30-minute arms runs, even together, README: off)."""

    def __post_init__(self) -> None:
        if self.simulations < 2 or self.fast_simulations < 2:
            raise ValueError("simulations must be at least 2")
        if not 0.0 <= self.full_search_prob <= 1.0:
            raise ValueError("full_search_prob must be in [0, 1]")
        if self.max_plies < 2:
            raise ValueError("max_plies must be at least 2")
        if self.concurrent_games < 1:
            raise ValueError("concurrent_games must be at least 1")
        if not 0.0 <= self.endgame_share <= 1.0:
            raise ValueError("endgame_share must be in [0, 1]")
        if not 0.0 <= self.odds_share <= 1.0:
            raise ValueError("odds_share must be in [0, 1]")
        if self.sample_plies < 0:
            raise ValueError("sample_plies must be 0 or more")
        if self.play_on_simulations == 1 or self.play_on_simulations < 0:
            raise ValueError("play_on_simulations must be 0 (off) or at least 2")
        if self.play_on_noise < 0:
            raise ValueError("play_on_noise must be 0 or more")
        if self.play_on_plies < 0:
            raise ValueError("play_on_plies must be 0 (to --max-plies) or more")




def game_starts(n_games: int, cfg: SelfPlayConfig, seed: int) -> dict[int, tuple[chess.Board, bool]]:
    """Game number -> (its start, whether it is an ending) for the games that do not start from the opening.

    A game drawn for both an odds start and an ending starts from the ending.
    """
    given = {i: (board, False) for i, board in odds.starts(n_games, cfg.odds_share, seed).items()}
    given.update({i: (board, True) for i, board in endgames.starts(n_games, cfg.endgame_share, seed).items()})
    return given

