"""Alertmanager base files that try to hang or exhaust `memwarden alertmanager merge`.

The base is the operator's (or whoever can write it): it gets the policy loader's limits
on size, nesting and alias expansion, named in a one-line error, and nothing is written.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from memwarden.generator.cli import main_alertmanager
from memwarden.policy.yamlsafe import MAX_BYTES, MAX_DEPTH, MAX_NODES

# A base Alertmanager would take, so only the hostile part differs between the cases.
BASE = """\
global: {smtp_smarthost: 'mail.example.com:25', smtp_from: 'am@example.com'}
route:
  receiver: default
receivers:
  - name: default
    email_configs: [{to: ops@example.com}]
"""


def _bomb(levels: int) -> str:
    lines = ["x0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, levels + 1)]
    return BASE + "\n".join(lines) + "\n"


HOSTILE = {
    "an alias bomb of 8 levels": (_bomb(8), f"expands to more than {MAX_NODES} values"),
    "a recursive alias": (BASE + "x: &a {b: *a}\n", "an alias refers to a node that contains it"),
    # 5,000 levels took 8 s on main and ended in "RecursionError".
    "lists nested 5,000 deep": (BASE + "x: " + "[" * 5000 + "]" * 5000 + "\n", f"nested more than {MAX_DEPTH} levels"),
    "mappings nested 500 deep": (BASE + "x: " + "{a: " * 500 + "1" + "}" * 500 + "\n", f"nested more than {MAX_DEPTH} levels"),
    "a list of 300,000 items": (BASE + "x: [" + "a, " * 300_000 + "]\n", f"has more than {MAX_NODES} values"),
    "over the size limit": (BASE + "# " + "x" * MAX_BYTES + "\n", "the limit is"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_merge_names_each_hostile_base_and_writes_nothing(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text, reason = HOSTILE[case]
    base = tmp_path / "alertmanager.yml"
    base.write_text(text)
    out = tmp_path / "out.yml"
    started = time.monotonic()
    assert main_alertmanager(["merge", str(base), "-o", str(out)]) == 1
    elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    assert err.startswith(f"error: {base} cannot be read: "), err[:500]
    assert reason in err and "nothing was written" in err and "RecursionError" not in err, err[:500]
    assert not out.exists()
    # A hang guard, not a speed claim (the 300,000-item list took 5.4 s on a loaded 2-core CI
    # box, 1 s on a quiet one): the unbounded loaders took minutes and gigabytes here.
    assert elapsed < 60, f"{case} took {elapsed:.1f} s"


def test_anchors_within_the_limits_still_merge(tmp_path: Path) -> None:
    base = tmp_path / "alertmanager.yml"
    base.write_text(
        BASE.replace("    email_configs: [{to: ops@example.com}]\n", "    email_configs: [&mail {to: ops@example.com}]\n")
        + "  - name: second\n    email_configs: [*mail]\n"
    )
    out = tmp_path / "out.yml"
    assert main_alertmanager(["merge", str(base), "-o", str(out)]) == 0
    assert "name: second" in out.read_text() and "*mail" in out.read_text()
