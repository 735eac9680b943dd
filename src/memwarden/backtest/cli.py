"""`memwarden backtest`: the policy's rules replayed through promtool, beside the peers' rules.

Three sources: the synthetic corpus (default; tuned and held-out halves, warm and cold),
recorded traces (`--trace FILE ...`), and the user's own Prometheus (`--prometheus URL`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import binaries
from ..policy import Duration, Policy, load_or_report
from . import corpus, recorded, synthetic, traces

CORPORA = {
    "tuned": corpus.tuned,
    "held-out": corpus.held_out,
    "standard": corpus.standard_curves,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="memwarden backtest",
        description="Replay memory curves through promtool with the policy's rules and the peers' (node-mixin, "
        "awesome-prometheus-alerts, a naive predict_linear): synthetic curves (default), recorded traces "
        "(--trace) or your own Prometheus' history (--prometheus).",
    )
    parser.add_argument("-p", "--policy", help="policy file (default: the built-in default policy)")
    parser.add_argument(
        "--corpus",
        choices=[*CORPORA, "all"],
        default="all",
        help="synthetic curves: the half the defaults were tuned on, the held-out half, the original 12, or all (default)",
    )
    parser.add_argument(
        "--mode",
        choices=["warm", "cold", "both"],
        default="both",
        help="replay curves with 150 min of their past, with none, or both",
    )
    parser.add_argument(
        "--trace", nargs="+", type=Path, metavar="FILE", help="recorded traces: CSV t_seconds,used_ratio (plain or .gz)"
    )
    parser.add_argument(
        "--step", default="60s", help="replay step for traces (default 60s); samples further apart are interpolated"
    )
    parser.add_argument(
        "--max-gap", default="15m", help="recorded samples further apart than this are a gap, not interpolated (default 15m)"
    )
    parser.add_argument(
        "--held-out",
        choices=["all", "tuned", "held-out"],
        default="all",
        help="which half of the traces to replay (split by file name)",
    )
    parser.add_argument(
        "--refires",
        action="store_true",
        help="traces: also print, per trace and alert, the minutes from each resolve to its re-fire",
    )
    parser.add_argument("--workers", type=int, default=None, help="promtool processes in parallel (default: one per core)")
    try:
        from . import history
    except ImportError:  # the --prometheus mode ships in backtest/history.py
        pass
    else:
        history.add_arguments(parser)
    return parser


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    loaded = load_or_report(args.policy, "nothing was replayed")
    if loaded is None:
        return 1
    policy, _ = loaded
    try:
        promtool = binaries.require("promtool")
    except binaries.MissingProgram as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if getattr(args, "prometheus", None):
        from . import history

        return history.run(args, policy, promtool)
    if args.trace:
        return _traces(args, policy, promtool)
    return _synthetic(args, policy, promtool)


def _synthetic(args: argparse.Namespace, policy: Policy, promtool: str) -> int:
    names = list(CORPORA)[:2] if args.corpus == "all" else [args.corpus]
    modes = [False, True] if args.mode == "both" else [args.mode == "cold"]
    broken = 0
    for name in names:
        outcomes = [
            o for cold in modes for o in synthetic.replay(policy, CORPORA[name](), promtool, cold=cold, workers=args.workers)
        ]
        print(f"## {name} curves\n")
        print(synthetic.table(outcomes))
        print()
        print(synthetic.summary(policy, outcomes))
        problems = [problem for outcome in outcomes for problem in synthetic.verdicts(policy, outcome)]
        for problem in problems:
            print(f"not met: {problem}")
        print()
        broken += len(problems)
    print("all requirements met" if not broken else f"{broken} requirement(s) not met")
    return 1 if broken else 0


def _traces(args: argparse.Namespace, policy: Policy, promtool: str) -> int:
    try:
        step, gap = Duration(args.step).seconds, Duration(args.max_gap).seconds
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if step <= 0:
        print("error: --step must be longer than 0s", file=sys.stderr)
        return 2
    files = [
        path for path in args.trace if args.held_out == "all" or traces.is_held_out(path.name) == (args.held_out == "held-out")
    ]
    try:
        loaded = traces.load(files, step, gap)
    except traces.TraceError as error:
        print(f"error: {error}; nothing was replayed", file=sys.stderr)
        return 1
    outcomes = recorded.replay(policy, loaded, promtool, workers=args.workers)
    print(recorded.table(recorded.count(outcomes)))
    if args.refires:
        print()
        print(recorded.refire_report(outcomes))
    return 0
