"""The embedded local mesh: Istio semantics on loopback."""
