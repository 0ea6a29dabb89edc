"""Read the Bookinfo product page the way a lab does: who is signed in, which reviews
version answered, how many stars of which colour, which error blocks are shown.

Works on both UI flavours (docs/facts.md#productpage-html):

* Tailwind (images >= 1.20.1): each review is a ``<section>``; filled stars are
  ``<svg fill="currentColor">`` (with ``id="glyphicon glyphicon-star"`` from 1.20.2) inside a
  ``<div class="... text-<color>-500">``; empty stars are ``<svg fill="none">``.
* Bootstrap (legacy): each review is a ``<blockquote>``; filled stars are
  ``<span class="glyphicon glyphicon-star">`` inside ``<font color="...">``; empty ones are
  ``glyphicon-star-empty``.

A star's colour is the colour of the wrapper that encloses that counted star element, never
a colour class found elsewhere: the ratings error text carries ``text-red-500`` too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

SERVED_BY = "Reviews served by:"
DETAILS_ERROR = "Error fetching product details"
REVIEWS_ERROR = "Error fetching product reviews"
#: a review's rating line when reviews (v2, v3) could not get its rating from ratings: the
#: reviews service's ``rating.error``, shown by productpage in place of that review's stars
#: (docs/facts.md#bookinfo-reviews, docs/facts.md#productpage-html). Not productpage's own
#: "Sorry, product ratings are currently unavailable for this book.", which only its
#: /api/v1/products/<id>/ratings route returns.
REVIEW_RATING_ERROR = "Ratings service is currently unavailable"

_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param",
    "source", "track", "wbr",
}  # fmt: skip
_TAILWIND_COLOR = re.compile(r"text-([a-z]+)-500")
# <deployment>-<replicaset hash>-<pod suffix>, the deployment being <app>-<version>.
_POD_NAME = re.compile(r"(?P<deployment>.+)-[a-z0-9]{6,10}-[a-z0-9]{5}")


@dataclass(frozen=True)
class Review:
    reviewer: str
    text: str
    stars: int  # filled star elements
    color: str | None  # colour of the wrapper enclosing the filled stars
    rating_error: bool  # "Ratings service is currently unavailable" shown instead of stars


@dataclass(frozen=True)
class ProductPage:
    title: str
    signed_in_user: str | None
    details_error: bool
    reviews_error: bool
    reviews: list[Review] = field(default_factory=list)
    served_by: str | None = None  # the reviews pod name after "Reviews served by:"

    @property
    def reviews_version(self) -> str | None:
        return version_from_pod_name(self.served_by) if self.served_by else None

    @property
    def total_stars(self) -> int:
        return sum(r.stars for r in self.reviews)

    @property
    def star_colors(self) -> set[str]:
        return {r.color for r in self.reviews if r.stars and r.color}


def version_from_pod_name(pod_name: str) -> str | None:
    """``reviews-v2-7d8f9c6b5d-x2k4p`` -> ``"v2"``."""
    m = _POD_NAME.fullmatch(pod_name)
    if m:
        return m.group("deployment").rsplit("-", 1)[-1]
    # Not a ReplicaSet pod name: fall back to a "v<digits>" segment.
    return next((p for p in pod_name.split("-") if re.fullmatch(r"v\d+", p)), None)


@dataclass
class _Element:
    tag: str
    color: str | None = None  # colour this element sets for its content (a star wrapper)
    review: "_ReviewDraft | None" = None  # the review this element opens
    capture: str | None = None  # which review field this element's text feeds


@dataclass
class _ReviewDraft:
    reviewer: list[str] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    star_colors: list[str | None] = field(default_factory=list)
    chunks: list[str] = field(default_factory=list)  # all text inside the review


class _PageParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[_Element] = []
        self.title: list[str] = []
        self.in_title = False
        self.texts: list[str] = []  # every text chunk outside <title>, scripts included
        self.last_text = ""  # latest non-blank text, to find the user before "Sign out"
        self.signed_in_user: str | None = None
        self.drafts: list[_ReviewDraft] = []
        self.served_by: str | None = None
        self.awaiting_served_by = False
        self.has_sections = False

    # -- element stack (tolerant of unmatched tags) --------------------------------------

    def current_review(self) -> _ReviewDraft | None:
        for el in reversed(self.stack):
            if el.review is not None:
                return el.review
        return None

    def enclosing_color(self) -> str | None:
        for el in reversed(self.stack):
            if el.color is not None:
                return el.color
        return None

    def capturing(self) -> str | None:
        for el in reversed(self.stack):
            if el.capture is not None:
                return el.capture
        return None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        classes = a.get("class", "").split()
        el = _Element(tag)
        review = self.current_review()

        if tag == "title":
            self.in_title = True
        if tag == "a" and a.get("href", "").strip("/") == "logout":
            # The user name is the text just before the sign-out link, in both flavours
            # ("<p>jason</p> <a>Sign out</a>" and "jason ( <a>sign out</a> )").
            user = self.last_text.strip().rstrip("(").strip()
            self.signed_in_user = user or None

        # A review container: <section> (Tailwind) or <blockquote> outside one (Bootstrap).
        if tag == "section":
            self.has_sections = True
            el.review = _ReviewDraft()
            self.drafts.append(el.review)
        elif tag == "blockquote" and review is None:
            el.review = _ReviewDraft()
            self.drafts.append(el.review)
        elif review is not None:
            # The first <p> in the blockquote is the text; the reviewer is a <small>
            # (Bootstrap) or the font-semibold <div> (Tailwind).
            free = self.capturing() is None
            if tag == "p" and self._in("blockquote") and not review.text and free:
                el.capture = "text"
            elif not review.reviewer and (
                tag == "small" or (tag == "div" and "font-semibold" in classes)
            ):
                el.capture = "reviewer"

        # Colour wrappers.
        if tag == "font" and a.get("color"):
            el.color = a["color"].strip()
        elif tag == "div":
            for c in classes:
                m = _TAILWIND_COLOR.fullmatch(c)
                if m:
                    el.color = m.group(1)

        if self._is_filled_star(tag, a, classes):
            self._count_star()

        if tag not in _VOID:
            self.stack.append(el)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if self._is_filled_star(tag, a, a.get("class", "").split()):
            self._count_star()

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self.in_title = False
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i].tag == tag:
                del self.stack[i:]
                return
        # An end tag with no open element: ignored, as browsers do.

    def handle_data(self, data: str) -> None:
        if self.in_title:
            self.title.append(data)
            return
        self.texts.append(data)
        if data.strip():
            self.last_text = data
        review = self.current_review()
        if review is not None:
            review.chunks.append(data)
            field_name = self.capturing()
            if field_name is not None:
                getattr(review, field_name).append(data)
        self._served_by(data)

    # -- helpers -------------------------------------------------------------------------

    def _in(self, tag: str) -> bool:
        return any(el.tag == tag for el in self.stack)

    @staticmethod
    def _is_filled_star(tag: str, a: dict[str, str], classes: list[str]) -> bool:
        if tag == "span":
            return "glyphicon-star" in classes  # glyphicon-star-empty is another token
        if tag == "svg":
            ids = a.get("id", "").split()
            return "glyphicon-star" in ids or a.get("fill", "").strip() == "currentColor"
        return False

    def _count_star(self) -> None:
        review = self.current_review()
        if review is not None:
            review.star_colors.append(self.enclosing_color())

    def _served_by(self, data: str) -> None:
        if self.awaiting_served_by:
            if data.strip():
                self.awaiting_served_by = False
                self.served_by = self.served_by or data.split()[0]
            return
        if SERVED_BY in data:
            rest = data.split(SERVED_BY, 1)[1]
            if rest.strip():
                self.served_by = self.served_by or rest.split()[0]
            else:  # Bootstrap: the pod name is in the next element (<u>)
                self.awaiting_served_by = True


def _review(draft: _ReviewDraft) -> Review:
    text = " ".join("".join(draft.text).split())
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1]  # Tailwind quotes the text in the markup
    colors = [c for c in draft.star_colors if c is not None]
    return Review(
        reviewer=" ".join("".join(draft.reviewer).split()),
        text=text,
        stars=len(draft.star_colors),
        color=colors[0] if colors else None,
        rating_error=REVIEW_RATING_ERROR in "".join(draft.chunks),
    )


def parse_product_page(html: str) -> ProductPage:
    """Parse a /productpage response body (either UI flavour)."""
    parser = _PageParser()
    parser.feed(html)
    parser.close()
    text = "".join(parser.texts)
    return ProductPage(
        title=" ".join("".join(parser.title).split()),
        signed_in_user=parser.signed_in_user,
        details_error=DETAILS_ERROR in text,
        reviews_error=REVIEWS_ERROR in text,
        reviews=[_review(d) for d in parser.drafts if d.reviewer or d.text],
        served_by=parser.served_by,
    )


__all__ = ["ProductPage", "Review", "parse_product_page", "version_from_pod_name"]
