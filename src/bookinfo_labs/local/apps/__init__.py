"""Local implementations of the sample apps, found by container image.

A Deployment's container image names what runs in the pod; the local mesh looks the image
up here. ``None`` means the container serves nothing (the curl/sleep client only runs
``sleep infinity`` and is exec'd into).
"""

from __future__ import annotations

from .base import AppFactory

# Images whose container serves nothing.
_IDLE_IMAGES = {"curl", "sleep", "fortio"}  # fortio: the load client, exec'd into


def image_name(image: str) -> str:
    """``docker.io/istio/examples-bookinfo-reviews-v2:1.20.3`` -> ``examples-bookinfo-reviews-v2``."""
    return image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]


def find_app(image: str) -> tuple[AppFactory, dict[str, str]] | None:
    """The local app for a container image; None for an idle container; KeyError if unknown."""
    from .. import zipkin
    from . import bookinfo, helloworld, httpbin, nginx, ratelimit, tcp_echo

    name = image_name(image)
    if name in _IDLE_IMAGES:
        return None
    registry = {**bookinfo.IMAGES, **httpbin.IMAGES, **tcp_echo.IMAGES, **helloworld.IMAGES,
                **nginx.IMAGES, **ratelimit.IMAGES, **zipkin.IMAGES}
    if name not in registry:
        raise KeyError(name)
    return registry[name]
