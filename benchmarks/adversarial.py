"""What each hostile input costs memwarden: this checkout beside another one, as a ratio.

    .venv/bin/python benchmarks/adversarial.py --before /tmp/old/src

The server attacks (benchmarks/adversarial_servers.py: real servers under floods on loopback,
a minute or two each) print the issue's figure beside this checkout's, and `--before`'s;
`--no-servers` leaves them out.

`--before` is the `src` folder of another checkout (e.g. `git archive <commit> src | tar
-x -C /tmp/old`); without it only this checkout is measured. Every attack runs in a child
with a 4 GiB address-space limit and a 120 s deadline, and reports wall time and peak RSS
(a child that hits a limit is shown as such, which is itself the figure).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

HERE_SRC = str(Path(__file__).resolve().parents[1] / "src")
HEADER = "version: memwarden/v1\n"


def _bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return HEADER + "\n".join(lines) + f"\nlabels: {{team: *a{levels}}}\n"


POLICIES = {
    "policy alias bomb, 6 levels": _bomb(6),
    "policy alias bomb, 7 levels": _bomb(7),
    "policy nested 500 deep": HEADER + "labels: " + "[" * 500 + "]" * 500 + "\n",
    "policy horizon 1y at 1s scrapes": HEADER + "source: {scrape_interval: 1s}\nprediction: {horizon: 1y}\n",
}
CHECK = """
import sys, time, resource
from memwarden.policy import check_text
from memwarden.generator.bundle import render_bundle
text = open(sys.argv[1]).read()
start = time.perf_counter()
try:
    policy, problems = check_text(text, "p.yaml")
    if policy is not None:
        render_bundle(policy, "p.yaml")
    outcome = "refused" if policy is None else "rendered"
except BaseException as error:
    outcome = type(error).__name__
print(outcome, time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
REGEX = """
import sys, time, resource
pattern, line = r'^(\\w+\\s?)+$', 'a' * int(sys.argv[1]) + '!'
try:
    from memwarden.cmdline_pattern import compile_cmdline
except ImportError:
    import re
    compile_cmdline = re.compile
compiled = compile_cmdline(pattern)
start = time.perf_counter()
compiled.search(line)
print("matched", time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _run(src: str, code: str, *args: str) -> tuple[str, float | None, float | None]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))

    try:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=120,
            env={**os.environ, "PYTHONPATH": src}, preexec_fn=limit,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "over 120 s", None, None
    if done.returncode != 0 or not done.stdout.strip():
        return f"died ({done.stderr.strip().splitlines()[-1][:40] if done.stderr.strip() else done.returncode})", None, None
    outcome, seconds, rss_kib = done.stdout.split()
    return outcome, float(seconds), int(rss_kib) / 1024


def _row(name: str, before: tuple | None, after: tuple) -> dict:
    def show(result: tuple | None) -> str:
        if result is None:
            return "-"
        outcome, seconds, rss = result
        return outcome if seconds is None else f"{outcome} {seconds:.3f}s {rss:.0f}MB"

    ratio = ""
    if before and before[1] is not None and after[1]:
        ratio = f"{before[1] / after[1]:.0f}x faster"
    return {"attack": name, "before": show(before), "after": show(after), "ratio": ratio}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="src folder of the checkout to compare with")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--no-servers", action="store_true", help="leave out the server floods")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name, text in POLICIES.items():
            path = Path(folder) / "policy.yaml"
            path.write_text(text)
            before = _run(args.before, CHECK, str(path)) if args.before else None
            rows.append(_row(name, before, _run(HERE_SRC, CHECK, str(path))))
    for length in (21, 25, 5000):
        before = _run(args.before, REGEX, str(length)) if args.before and length <= 25 else None
        if args.before and length > 25:
            before = ("not tried (doubles per character)", None, None)
        rows.append(_row(f"cmdline ^(\\w+\\s?)+$ on {length} x 'a' + '!'", before, _run(HERE_SRC, REGEX, str(length))))
    if not args.no_servers:
        from adversarial_servers import ATTACKS

        for name, issue, attack, compare in ATTACKS:
            before = attack(args.before) if args.before and compare else "-"
            rows.append({"attack": name, "issue": issue, "before": before, "after": attack(HERE_SRC), "ratio": ""})
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            if "issue" in row:
                print(f"{row['attack']}\n    issue:  {row['issue']}\n    before: {row['before']}\n    now:    {row['after']}")
                continue
            print(f"{row['attack']:<44} before: {row['before']:<32} after: {row['after']:<28} {row['ratio']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
