"""The policy: model, loading with every problem at once, and the built-in default."""

# The shared names come from the contract leaf; the policy re-exports them for its users.
from memwarden.contract import GENERATOR_LABEL, TIER_NUMBER, TIERS

from .components import Component
from .loader import (
    DEFAULT_POLICY_NAME,
    check_text,
    default_policy_text,
    load_or_report,
    load_policy,
)
from .model import API_VERSION, Policy
from .problems import PolicyError, Problem, format_path
from .source import parse_selector, selector_job
from .thresholds import Thresholds
from .units import Duration, eval_after, human_bytes, parse_bytes

__all__ = [
    "API_VERSION",
    "DEFAULT_POLICY_NAME",
    "GENERATOR_LABEL",
    "TIERS",
    "TIER_NUMBER",
    "Component",
    "Duration",
    "Policy",
    "PolicyError",
    "Problem",
    "Thresholds",
    "check_text",
    "default_policy_text",
    "eval_after",
    "format_path",
    "human_bytes",
    "load_or_report",
    "load_policy",
    "parse_bytes",
    "parse_selector",
    "selector_job",
]
