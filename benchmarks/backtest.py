"""The prediction and the tiers replayed through promtool, beside the peers, on every corpus.

Prints, for the synthetic corpus (the tuned half and the held-out half, each warm and cold)
and for the recorded traces in ../shared/traces/bitbrains (tuned and held-out halves, split
by file name), memwarden's default policy beside the node-mixin, awesome-prometheus-alerts
and a naive predict_linear from the same promtool run — and, with --compare, the same
policy with the steady-rise guard and the prediction's keep_firing_for off (the guards
before it), so what the guard buys is measured in the same run.

    python benchmarks/backtest.py [POLICY] [--traces DIR] [--quick] [--compare]

--quick replays the synthetic corpus only; --compare adds the run with the guard off.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from memwarden import binaries
from memwarden.backtest import corpus, recorded, synthetic, traces
from memwarden.policy import Duration, Policy, load_policy

TRACES = Path(__file__).resolve().parents[2] / "shared" / "traces" / "bitbrains"


def without_steady_guard(policy: Policy) -> Policy:
    guards = policy.prediction.guards.model_copy(update={"steady_windows": []})
    prediction = policy.prediction.model_copy(update={"guards": guards, "keep_firing_for": Duration("0s")})
    return policy.model_copy(update={"prediction": prediction})


def synthetic_part(label: str, policy: Policy, promtool: str) -> None:
    for name, curves in (("tuned", corpus.tuned()), ("held-out", corpus.held_out())):
        started = time.monotonic()
        outcomes = [o for cold in (False, True) for o in synthetic.replay(policy, curves, promtool, cold=cold)]
        print(f"## synthetic, {name} half — {label}  ({time.monotonic() - started:.0f} s)\n")
        print(synthetic.table(outcomes))
        print()
        print(synthetic.summary(policy, outcomes))
        for problem in (p for outcome in outcomes for p in synthetic.verdicts(policy, outcome)):
            print(f"  not met: {problem}")
        print()


def traces_part(label: str, policy: Policy, promtool: str, folder: Path) -> None:
    files = sorted(folder.glob("*.csv*"))
    for name, held_out in (("tuned", False), ("held-out", True)):
        chosen = [path for path in files if traces.is_held_out(path.name) == held_out]
        started = time.monotonic()
        outcomes = recorded.replay(policy, traces.load(chosen, 60, 900), promtool)
        print(f"## recorded traces, {name} half ({len(chosen)} files) — {label}  ({time.monotonic() - started:.0f} s)\n")
        print(recorded.table(recorded.count(outcomes)))
        print()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("policy", nargs="?")
    parser.add_argument("--traces", type=Path, default=TRACES)
    parser.add_argument("--quick", action="store_true", help="the synthetic corpus only")
    parser.add_argument("--compare", action="store_true", help="also replay everything with the steady-rise guard off")
    args = parser.parse_args()
    promtool = binaries.require("promtool")
    policy, _, _ = load_policy(args.policy)
    variants = [("default guards", policy)]
    if args.compare:
        variants.append(("steady-rise guard off (the guards before)", without_steady_guard(policy)))
    for label, chosen in variants:
        synthetic_part(label, chosen, promtool)
        if not args.quick and args.traces.is_dir():
            traces_part(label, chosen, promtool, args.traces)
    return 0


if __name__ == "__main__":
    sys.exit(main())
