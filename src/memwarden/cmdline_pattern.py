"""Command-line patterns compiled with RE2, so matching takes time linear in the command line.

Any local user chooses their processes' command lines, and the exporter and responder
match every one of them against the policy's `cmdline` patterns. With Python's
backtracking `re`, `^(\\w+\\s?)+$` against `aaa…a!` doubled its time per character
(2 s a scrape at 25 characters). RE2, the engine of Prometheus' own regexes, never
backtracks; what it cannot do in linear time (backreferences, lookaround) it refuses
to compile, and the policy check reports that.
"""

from __future__ import annotations

import re
from typing import Protocol

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # the reason comes back in the exception; keep stderr for our own messages
# A pattern whose compiled program would need more than this is refused (RE2's default is 8 MiB).
_OPTIONS.max_mem = 8 << 20


class Pattern(Protocol):
    def search(self, text: str) -> object | None: ...


class PatternError(ValueError):
    """A pattern RE2 will not compile; the message says why."""


def compile_cmdline(pattern: str) -> Pattern:
    """Compile a `cmdline` pattern; raise PatternError with RE2's reason and the fix."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as error:
        try:
            re.compile(pattern)
        except re.error as syntax:
            raise PatternError(f"not a valid regular expression: {syntax}") from None
        reason = error.args[0].decode("utf-8", "replace") if error.args and isinstance(error.args[0], bytes) else str(error)
        raise PatternError(
            f"uses what RE2 cannot match in bounded time: {reason} (command lines are matched with RE2, "
            "as Prometheus matches its regexes: no backreferences or lookaround)"
        ) from None
