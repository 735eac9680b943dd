"""The PromQL shapes: named Jinja2 templates, strict about their values, each one used."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest

from memwarden.generator import rules, shapes


def test_a_value_a_shape_names_but_the_caller_forgot_is_an_error_not_an_empty_string() -> None:
    with pytest.raises(jinja2.UndefinedError, match="swap_out"):
        shapes.render("swap_thrashing", swap_in="a", rate=1)


def test_a_shape_is_laid_out_without_trailing_blanks_or_outer_blank_lines() -> None:
    expr = shapes.render("either", host="a >= 0.9", component="b\nunless\nc")
    assert expr == "(\n  a >= 0.9\n)\nor\n(\n  b\n  unless\n  c\n)"


def test_every_shape_is_used_by_a_rule_and_no_rule_names_a_missing_one() -> None:
    source = "".join(path.read_text() for path in sorted(Path(rules.__file__).parent.glob("*.py")))
    known = shapes.shape_names()
    assert known, "no shapes found: is templates/promql packaged?"
    unused = [name for name in known if f'"{name}"' not in source]
    assert not unused, f"shapes no rule renders: {unused}"
    named = set(re.findall(r'shapes\.render\(\s*"(\w+)"', source))
    assert named - set(known) == set(), "rules render shapes that do not exist"
