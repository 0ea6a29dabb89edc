"""Check primitives: ``eventually`` (N consecutive passes before a deadline), sequential
split tests with exact error bounds, and exact binomial bands. See
docs/architecture.md#checks."""

from .eventually import EventuallyPolicy, eventually
from .stats import binomial_band, false_failure_probability, parse_shares

__all__ = [
    "EventuallyPolicy",
    "binomial_band",
    "eventually",
    "false_failure_probability",
    "parse_shares",
]
