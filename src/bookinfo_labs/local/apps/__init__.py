"""Local implementations of the sample apps (Bookinfo, clients, httpbin...)."""
