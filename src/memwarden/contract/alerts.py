"""Alert names, tiers and severities: what the rules fire and Alertmanager and the responder match."""

from __future__ import annotations

from typing import Literal, get_args

# The four tiers, mildest first; an alert's `severity` is one of them and `tier` its number.
Severity = Literal["warning", "high", "critical", "emergency"]
TIERS: tuple[Severity, ...] = get_args(Severity)
SEVERITIES = TIERS
TIER_NUMBER: dict[str, int] = {name: number for number, name in enumerate(TIERS, start=1)}
TIER_TITLE: dict[str, str] = {name: name.title() for name in TIERS}

# Set on every alert memwarden renders, so Alertmanager routes and inhibitions select
# memwarden's alerts and nothing else (an operator's own "MemoryHigh" alert included).
GENERATOR_LABEL = ("generator", "memwarden")


def tier_alert_name(level: str, tier: str) -> str:
    """`MemoryUsageHigh` for the host (level `instance`), `MemoryComponentHigh` for a component."""
    return f"Memory{'Usage' if level == 'instance' else 'Component'}{TIER_TITLE[tier]}"


# Every alert the generated rules can fire (a test holds the committed bundle to this list).
ALERT_NAMES: tuple[str, ...] = (
    *(tier_alert_name(level, tier) for level in ("instance", "component") for tier in TIERS),
    "MemoryExhaustionPredicted",
    "MemoryComponentExhaustionPredicted",
    "MemoryErrorBudgetBurn",
    "MemoryPressureStalls",
    "MemoryPressureStallsFull",
    "MemorySwapThrashing",
    "MemoryOOMKills",
    "MemoryComponentNotFound",
    "MemoryComponentBudgetUnknown",
    "MemorySourceDown",
    "MemorySourceAbsent",
    "MemorySourceCollectorFailed",
)
