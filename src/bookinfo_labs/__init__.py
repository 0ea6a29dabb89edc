"""bookinfo-labs: the Istio Bookinfo labs as executable scenarios."""

__version__ = "0.1.0"
