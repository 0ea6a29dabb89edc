"""Which backend answered: read from the marker the app itself exposes.

Bookinfo's reviews service reports its pod name (``"podname"`` in its JSON, "Reviews served
by:" on the product page); a pod name is ``<deployment>-<replicaset hash>-<suffix>`` and
the labs' Deployments are named ``<app>-<version>``. The version is read from that name,
never guessed from a colour that error text can share.
"""

from __future__ import annotations

import json
import re

from ..mesh import HttpResponse
from .page import ProductPage, parse_product_page

_POD = re.compile(r"^(?P<deployment>[a-z0-9-]+?)-[a-z0-9]{5,10}-[a-z0-9]{5}$")


def deployment_of(pod_name: str) -> str | None:
    match = _POD.match(pod_name)
    return match.group("deployment") if match else None


def version_of(pod_name: str | None) -> str | None:
    """``reviews-v2-7d8f9c6b5d-x2k4p`` -> ``v2``."""
    deployment = deployment_of(pod_name or "")
    if deployment is None:
        return None
    tail = deployment.rsplit("-", 1)[-1]
    return tail if re.fullmatch(r"v\d+", tail) else None


def is_page(response: HttpResponse) -> bool:
    return "text/html" in (response.header("content-type") or "")


def page(response: HttpResponse) -> ProductPage:
    return parse_product_page(response.body)


def served_by(response: HttpResponse) -> str | None:
    """The reviews pod behind a product page or a reviews API response."""
    if is_page(response):
        return page(response).served_by
    try:
        body = json.loads(response.body)
    except ValueError:
        return None
    return body.get("podname") if isinstance(body, dict) else None


def reviews_version(response: HttpResponse) -> str | None:
    return version_of(served_by(response))


def star_colors(response: HttpResponse) -> set[str]:
    """Colours of the filled stars on a page or in a reviews JSON response."""
    if is_page(response):
        return page(response).star_colors
    try:
        body = json.loads(response.body)
    except ValueError:
        return set()
    return {r["rating"]["color"] for r in body.get("reviews", [])
            if isinstance(r.get("rating"), dict) and "color" in r["rating"]}


_STATIC_LINK = re.compile(r'(?:src|href)="/?(static/[^"?#]+)"')


def linked_static_paths(html: str) -> list[str]:
    """The product page's own static files (``src``/``href`` under ``static/``), as paths."""
    return sorted({"/" + m for m in _STATIC_LINK.findall(html)})
