"""The kinds a policy names: how a component is matched, what an action does."""

from __future__ import annotations

from typing import Literal, get_args

# How a component's processes are found, in the order a policy's error lists them.
MatchKind = Literal["cmdline", "pidfile", "cgroup", "systemd_unit"]
MATCH_KINDS: tuple[MatchKind, ...] = get_args(MatchKind)
# Matches that find processes (measured by their RSS) and those that name a cgroup of its own.
PROCESS_MATCH_KINDS: tuple[MatchKind, ...] = ("cmdline", "pidfile")
CGROUP_MATCH_KINDS: tuple[MatchKind, ...] = ("cgroup", "systemd_unit")

# What the responder may do, mildest first.
ActionKind = Literal["log", "http", "signal", "command", "freeze", "throttle", "kill"]
ACTION_KINDS: tuple[ActionKind, ...] = get_args(ActionKind)
# The actions that stop or slow a process: never on a protected component.
FORCEFUL_KINDS: tuple[ActionKind, ...] = ("freeze", "throttle", "kill")
