"""Check primitives: ``eventually`` (N consecutive passes before a deadline) and exact
binomial acceptance bands for traffic splits. See docs/architecture.md#checks."""

from .eventually import EventuallyPolicy, eventually
from .stats import (
    SplitCheck,
    SplitRow,
    binomial_band,
    check_split,
    false_failure_probability,
    parse_shares,
)

__all__ = [
    "EventuallyPolicy",
    "SplitCheck",
    "SplitRow",
    "binomial_band",
    "check_split",
    "eventually",
    "false_failure_probability",
    "parse_shares",
]
