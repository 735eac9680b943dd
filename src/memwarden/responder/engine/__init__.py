"""Decide what to do about each alert, run it safely, and undo it when the alert resolves.

For every rule that takes a firing alert, the episode (fingerprint + startsAt) walks the
rule's actions in order. A step runs at most once per episode; the next step is considered
only after the previous one's `grace` with the alert still firing. Before a step runs it
must pass its target's cooldown and hourly cap (shared by every rule acting on that kind
and target) and, if it touches the host, the global concurrency cap.

One module per concern: decide.py (the next step, its limits, its claim), execute.py
(running it and recording how it ended), undo.py (thaw and unthrottle), recheck.py (the
periodic look), core.py (the Engine that wires them); decision.py holds what they pass.
"""

from .core import Engine
from .decision import Decision, StateUnwritable

__all__ = ["Decision", "Engine", "StateUnwritable"]
