"""Replay synthetic memory curves through promtool: memwarden's rules beside the peers.

Prints, per curve, the lead time (minutes before usage reaches 99 %; + is early) of
memwarden's critical-or-higher alerts and prediction, of the node-mixin's
NodeMemoryHighUtilization and of awesome-prometheus-alerts' HostOutOfMemory, and the
number of firing episodes. Run twice: with the default guards, and with the new-high
guard off, to show what that guard trades.
"""

from __future__ import annotations

import sys
import time

from memwarden import binaries
from memwarden.backtest import replay, standard_curves, table, verdicts
from memwarden.policy import Duration, Policy, load_policy


def run(title: str, policy: Policy, promtool: str) -> int:
    started = time.monotonic()
    outcomes = replay(policy, standard_curves(), promtool)
    print(f"## {title}  ({time.monotonic() - started:.0f} s)")
    print(table(policy, outcomes))
    broken = [problem for outcome in outcomes for problem in verdicts(policy, outcome)]
    for problem in broken:
        print(f"  not met: {problem}")
    print()
    return len(broken)


def main() -> int:
    promtool = binaries.require("promtool")
    policy, _, _ = load_policy(sys.argv[1] if len(sys.argv) > 1 else None)
    broken = run("default guards", policy, promtool)
    guards = policy.prediction.guards.model_copy(update={"new_high_over": Duration("0s")})
    without = policy.model_copy(update={"prediction": policy.prediction.model_copy(update={"guards": guards})})
    run("new-high guard off (prediction.guards.new_high_over: 0s)", without, promtool)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
