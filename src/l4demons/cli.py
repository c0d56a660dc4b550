"""``l4demons``: the command line, a thin door onto the library.

Subcommands: ``train``, ``pretrain``, ``history``, ``rollback``, ``elo``, ``report``,
``uci``, ``serve``, ``prune``. User errors (bad flags, an unusable hub, weights of another
architecture) print one line and exit 2; Ctrl-C during training saves,
uploads and exits 0. Output piped into a reader that stops early (``| head``)
ends quietly.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import sys
import time
from pathlib import Path

from l4demons import __version__


class CliError(Exception):
    """A user error the CLI reports in one line."""


def _add_hub(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hub", default=None, help="checkpoint hub: a directory or hf://owner/repo (default: $L4D_HUB, else the local hub)")
    p.add_argument("--token", default=None, help="Hugging Face token (default: $HF_TOKEN or the saved login)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _nonneg_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="l4demons", description="A chess bot that teaches itself by self-play.")
    parser.add_argument("--version", action="version", version=f"l4demons {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    # -q after the subcommand too; SUPPRESS keeps a subcommand without it from resetting the one before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=lambda **kw: argparse.ArgumentParser(parents=[common], **kw))

    t = sub.add_parser("train", help="self-play and learn, committing every cycle to the hub")
    _add_train_flags(t)

    w = sub.add_parser("pretrain", help="warm start: supervised training from a teacher engine or PGN games, one commit")
    _add_pretrain_flags(w)

    h = sub.add_parser("history", help="list the hub's commits: cycle, Elo, loss, time, machine")
    _add_hub(h)
    h.add_argument("-n", "--limit", type=_positive_int, default=None, help="newest N commits only")

    r = sub.add_parser("rollback", help="a new commit whose files are those of REV (history is kept)")
    r.add_argument("revision", metavar="REV", help="commit id (a unique prefix is enough)")
    _add_hub(r)

    e = sub.add_parser("elo", help="measure the Elo of a checkpoint against calibrated opponents")
    _add_hub(e)
    e.add_argument("--file", default="model_best.pt", help="model_best.pt, model.pt, a commit id, or a local .pt file")
    e.add_argument("--games", type=_positive_int, default=60,
                   help="games to play (with --calibrate: games per neighbouring pair of the ladder)")
    e.add_argument("--tc", default="nodes=200", help="bot budget per move: nodes=N, time=S or depth=D")
    e.add_argument("--pgn", default="elo_games.pgn", help="where to write every game")
    e.add_argument("--calibrate", action="store_true", help="re-measure the anchors' ratings instead")

    rp = sub.add_parser("report", help="draw Elo and loss curves over cycles and hours to a PNG")
    _add_hub(rp)
    rp.add_argument("--out", default="l4demons_report.png", help="PNG to write")

    _add_prune(sub)

    u = sub.add_parser("uci", help="speak UCI on stdin/stdout (for GUIs, lichess-bot, match runners)")
    _add_uci_flags(u)

    s = sub.add_parser("serve", help="serve the bot over HTTP (the ChessHacks contract) with a board to play on")
    _add_serve_flags(s)
    return parser


def _setup_logging(quiet: bool) -> None:
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
    for noisy in ("httpx", "httpx2", "httpcore", "huggingface_hub", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    """``l4demons train``'s flags, generated from :class:`l4demons.lifecycle.TrainConfig` (one place for defaults)."""
    from l4demons.flags import add_flags
    from l4demons.lifecycle.config import TrainConfig

    _add_hub(p)
    add_flags(p, TrainConfig, skip=("hub",), nested=_TRAIN_NESTED)
    _choices(p, "device", ["auto", "cpu", "cuda"])


_TRAIN_NESTED = {"window": "window_", "selfplay": "", "learner": ""}
"""Config dataclasses inside TrainConfig, and the prefix of their flags."""


def cmd_train(args: argparse.Namespace) -> int:
    from l4demons.flags import from_flags
    from l4demons.lifecycle import TrainConfig, Trainer
    from l4demons.signals import StopFlag

    if args.cycles is not None and args.hours is not None:
        raise CliError("give --cycles or --hours, not both")
    try:
        cfg = from_flags(TrainConfig, args, nested=_TRAIN_NESTED, hub=args.hub)
    except ValueError as e:
        raise CliError(str(e)) from e
    stop = StopFlag()
    with stop.handle_signals():
        Trainer(cfg, _open_hub(args), stop).run()
    return 0


def _add_pretrain_flags(p: argparse.ArgumentParser) -> None:
    """``l4demons pretrain``'s flags, generated from :class:`l4demons.pretrain.PretrainConfig`."""
    from l4demons.flags import add_flags
    from l4demons.pretrain.run import PretrainConfig

    _add_hub(p)
    p.add_argument("--pgn", nargs="+", metavar="FILE", default=None,
                   help="learn from these .pgn or .pgn.zst files instead of a teacher engine")
    add_flags(p, PretrainConfig)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from l4demons.flags import from_flags
    from l4demons.pretrain import PretrainConfig, WarmStart
    from l4demons.signals import StopFlag

    try:
        pcfg = from_flags(PretrainConfig, args)
    except ValueError as e:
        raise CliError(str(e)) from e
    stop = StopFlag()
    with stop.handle_signals():
        WarmStart(pcfg, args.pgn, _open_hub(args), args.hub, stop).run()
    return 0


def _open_hub(args: argparse.Namespace):
    from l4demons.hub import open_hub

    return open_hub(args.hub, token=getattr(args, "token", None))


_CYCLE_RE = re.compile(r"Training cycle (\d+), Elo ~(\S+), Loss (\S+)")


def cmd_history(args: argparse.Namespace) -> int:
    from l4demons.checkpoint import METRICS_FILE, read_metrics

    hub = _open_hub(args)
    commits = hub.history(limit=args.limit)
    if not commits:
        print(f"hub {hub.uri} holds no commits yet; `l4demons train` makes the first")
        return 0
    by_cycle = {row.get("cycle"): row for row in read_metrics(hub.download(METRICS_FILE))}
    print(f"{'commit':8}  {'time (UTC)':19}  {'cycle':>5}  {'Elo':>6}  {'loss':>7}  {'machine':12}  message")
    for c in commits:
        title = c.message.splitlines()[0]
        m = _CYCLE_RE.search(title)
        cycle, elo, loss = (m.group(1), m.group(2), m.group(3)) if m else ("", "", "")
        machine = by_cycle.get(int(cycle), {}).get("machine", "") if cycle else ""
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(c.created_at))
        print(f"{c.id[:8]:8}  {stamp:19}  {cycle:>5}  {elo:>6}  {loss:>7}  {machine[:12]:12}  {title}")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    hub = _open_hub(args)
    info = hub.rollback(args.revision, parent=hub.head())
    print(f"[SAVE] {info.message} -> commit {info.id[:8]}")
    return 0


def _weights_from_hub(args: argparse.Namespace) -> Path:
    """--file as a local path, a hub file name at head, or a revision's model.pt."""
    from l4demons.checkpoint import MODEL_FILE

    local = Path(args.file)
    if local.suffix == ".pt" and local.is_file():
        return local
    hub = _open_hub(args)
    if args.file in ("model.pt", "model_best.pt"):
        path = hub.download(args.file)
    else:
        path = hub.download(MODEL_FILE, args.file)
    if path is None:
        raise CliError(f"hub {hub.uri} holds no {args.file}; train first (`l4demons train`) or pick another --file")
    return path


def cmd_elo(args: argparse.Namespace) -> int:
    from l4demons import elo

    if args.calibrate:
        anchors = elo.calibrate(games_per_pair=args.games)
        for a in anchors.sorted():
            print(f"{a.name:24} {a.elo:7.0f}  ({a.lo:.0f}..{a.hi:.0f})")
        return 0
    path = _weights_from_hub(args)
    est = elo.full_measurement(elo.PlayerSpec.net(path, nodes=200), args.games, tc=args.tc, pgn_path=args.pgn)
    print(elo.format_table(est))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from l4demons.checkpoint import METRICS_FILE, read_metrics
    from l4demons.elo import draw_report

    rows = read_metrics(_open_hub(args).download(METRICS_FILE))
    if not rows:
        raise CliError("the hub holds no metrics yet; train at least one cycle first")
    draw_report(rows, args.out)
    print(f"wrote {args.out}")
    return 0


def _add_uci_flags(p: argparse.ArgumentParser) -> None:
    """``l4demons uci``'s flags, generated from :class:`l4demons.uci_protocol.EngineOptions`: the options' first values."""
    from l4demons.flags import add_flags
    from l4demons.uci_protocol import EngineOptions

    add_flags(p, EngineOptions)
    _choices(p, "device", ["auto", "cpu", "cuda"])


def cmd_uci(args: argparse.Namespace) -> int:
    from l4demons.uci import run_uci

    return run_uci(args)


# -- hub traffic, storage and the stop path: `train` flags and `prune` -----------------------------------

def _add_prune(sub) -> None:
    p = sub.add_parser("prune", help="delete old optimizer states and replay chunks for good to fit a size")
    _add_hub(p)
    p.add_argument("--max-repo-gb", type=_positive_float, required=True, help="the size the hub must fit in")
    p.add_argument("--squash-history", action="store_true",
                   help="if that is not enough, squash old history into the head (old model.pt versions go)")
    p.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")


def cmd_prune(args: argparse.Namespace) -> int:
    from l4demons.hub.storage import format_bytes
    from l4demons.lifecycle.commit import is_heavy

    hub = _open_hub(args)
    report = hub.prune(int(args.max_repo_gb * 1e9), is_heavy, squash=args.squash_history, dry_run=args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for label in report.deleted:
        print(f"{verb} {label}")
    print(f"hub {hub.uri}: {format_bytes(report.size_before)} -> {format_bytes(report.size_after)} "
          f"(limit {format_bytes(report.limit)}){', history squashed' if report.squashed else ''}")
    if not report.within:
        raise CliError(f"{hub.uri} still holds {format_bytes(report.size_after)}: only model.pt history is left; "
                       "add --squash-history or raise --max-repo-gb")
    return 0


def _add_serve_flags(p: argparse.ArgumentParser) -> None:
    """``l4demons serve``'s flags, generated from :class:`l4demons.server.ServeSettings`.

    Only the flags given reach the settings, so ``$SERVE_PORT`` still applies when ``--port`` is not given.
    """
    from l4demons.flags import add_flags
    from l4demons.server.settings import ServeSettings

    add_flags(p, ServeSettings, only_given=True)
    _choices(p, "device", ["auto", "cpu", "cuda"])


def cmd_serve(args: argparse.Namespace) -> int:
    from l4demons.server.run import ServeError, serve
    from l4demons.server.settings import ServeSettings

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(ServeSettings) if hasattr(args, f.name)}
    try:
        settings = ServeSettings.from_env(**given)
        serve(settings, quiet=args.quiet)
    except (ValueError, ServeError) as e:
        raise CliError(str(e)) from e
    return 0


def _choices(p: argparse.ArgumentParser, dest: str, choices: list[str]) -> None:
    """Fixed choices for a generated flag: they read better in --help than a free string."""
    for action in p._actions:
        if action.dest == dest:
            action.choices = choices


COMMANDS = {"train": cmd_train, "pretrain": cmd_pretrain, "history": cmd_history, "rollback": cmd_rollback, "elo": cmd_elo,
            "report": cmd_report, "uci": cmd_uci, "serve": cmd_serve, "prune": cmd_prune}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _setup_logging(args.quiet or args.command == "uci")
    from l4demons.checkpoint import StateError
    from l4demons.elo.errors import EloError
    from l4demons.hub import HubError
    from l4demons.lifecycle import TrainError
    from l4demons.network import WeightsError

    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at interpreter exit
        return code
    except (CliError, TrainError, HubError, WeightsError, StateError, EloError) as e:
        print(f"l4demons: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("l4demons: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`l4demons history | head`): say nothing more, and keep the interpreter's
        # final flush from raising again (the recipe of Python's signal module documentation).
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a program ended by a closed pipe


if __name__ == "__main__":
    raise SystemExit(main())
