"""Registers the bookinfo-labs pytest plugin and the step definitions."""

pytest_plugins = [
    "bookinfo_labs.plugin",
    "steps.common",
    "steps.traffic",
    "steps.bookinfo",
    "steps.resilience",
    "steps.proxy",
    "steps.gateways",
    "steps.egress",
    "steps.tls",
    "steps.ratelimit",
    "steps.authz",
    "steps.mtls",
    "steps.accesslog",
    "steps.metrics",
    "steps.tracing",
    "pytester",  # the plugin's own tests run throwaway pytest projects
]
