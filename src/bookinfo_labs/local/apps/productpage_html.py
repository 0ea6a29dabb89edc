"""HTML the local productpage renders: the product page in both UI flavours, the landing
page and Flask/Werkzeug's stock error and redirect pages.

The markup reproduces what checks and labs look at on the real pages
(docs/facts.md#productpage-html): titles, error strings, star elements and their colour wrappers,
the "Reviews served by:" marker and the signed-in user. Whitespace and decoration are
our own; values are escaped the way Jinja's autoescape does.
"""

from __future__ import annotations

from typing import Any, Mapping

SIGN_IN_DIALOG_TITLE = "Sign in to BookInfo"


def escape(value: Any) -> str:
    """Jinja/markupsafe autoescape of a rendered value (None renders as "None")."""
    return (
        str(value)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("'", "&#39;")
        .replace('"', "&#34;")
    )


def _get(obj: Any, key: str) -> Any:
    """Jinja attribute lookup on JSON data: a missing key is undefined (None here)."""
    return obj.get(key) if isinstance(obj, Mapping) else None


def _show(value: Any) -> str:
    """Render like ``{{ value }}``: undefined renders empty, anything else escaped."""
    return "" if value is None else escape(value)


def _star_count(rating: Mapping) -> int:
    stars = rating.get("stars")
    return stars if isinstance(stars, int) and not isinstance(stars, bool) else 0


# ---------------------------------------------------------------------------------------
# Current template (Tailwind; images >= 1.20.1)
# ---------------------------------------------------------------------------------------

_TW_FILLED_PATH = (
    '<path fill-rule="evenodd" d="M10.868 2.884c-.321-.772-1.415-.772-1.736 0l-1.83 '
    "4.401-4.753.381c-.833.067-1.171 1.107-.536 1.651l3.62 3.102-1.106 4.637c-.194.813"
    ".691 1.456 1.405 1.02L10 15.591l4.069 2.485c.713.436 1.598-.207 1.404-1.02l-1.106"
    "-4.637 3.62-3.102c.635-.544.297-1.584-.536-1.65l-4.752-.382-1.831-4.401z\" "
    'clip-rule="evenodd" />'
)
_TW_EMPTY_PATH = (
    '<path stroke-linecap="round" stroke-linejoin="round" d="M11.48 3.499a.562.562 0 0 1 '
    "1.04 0l2.125 5.111a.563.563 0 0 0 .475.345l5.518.442c.499.04.701.663.321.988l-4.204 "
    "3.602a.563.563 0 0 0-.182.557l1.285 5.385a.562.562 0 0 1-.84.61l-4.725-2.885a.562"
    ".562 0 0 0-.586 0L6.982 20.54a.562.562 0 0 1-.84-.61l1.285-5.386a.562.562 0 0 0-.182"
    "-.557l-4.204-3.602a.562.562 0 0 1 .321-.988l5.518-.442a.563.563 0 0 0 .475-.345L11.48 "
    '3.5Z" />'
)

_TW_HEAD = """<meta charset="utf-8">
<meta http-equiv="X-UA-Compatible" content="IE=edge">
<meta name="viewport" content="width=device-width, initial-scale=1.0">

<title>Simple Bookstore App</title>
<script src="static/tailwind/tailwind.css"></script>
<script type="text/javascript">
  window.addEventListener("DOMContentLoaded", (event) => {
    const dialog = document.querySelector("dialog");
    const showButton = document.querySelector("#sign-in-button");
    const closeButton = document.querySelector("#close-dialog");
    if (showButton) {
      showButton.addEventListener("click", () => { dialog.showModal(); });
    }
    if (closeButton) {
      closeButton.addEventListener("click", () => { dialog.close(); });
    }
  })
</script>
"""

_TW_DIALOG = """
<!-- Sign in dialog -->
<dialog id="dialog" class="w-full sm:w-2/3 lg:w-1/3 border rounded-md shadow-xl">
  <div class="flex min-h-full flex-col justify-center px-6 py-12 lg:px-8">
    <div class="absolute right-0 top-0 hidden pr-4 pt-4 sm:block">
      <button id="close-dialog" type="button" class="rounded-md bg-white text-gray-400 hover:text-gray-500">
        <span class="sr-only">Close</span>
        <svg class="h-6 w-6" fill="none" viewBox="0 0 24 24" stroke-width="1.5" stroke="currentColor" aria-hidden="true">
          <path stroke-linecap="round" stroke-linejoin="round" d="M6 18L18 6M6 6l12 12" />
        </svg>
      </button>
    </div>
    <div class="sm:mx-auto sm:w-full sm:max-w-sm">
      <h2 class="mt-5 text-center text-2xl font-bold leading-9 tracking-tight text-gray-900">Sign in to BookInfo</h2>
    </div>
    <div class="mt-10 sm:mx-auto sm:w-full sm:max-w-sm">
      <form class="space-y-6" method="post" action='login' name="login_form">
        <div>
          <label for="email" class="block text-sm font-medium leading-6 text-gray-900">Username</label>
          <div class="mt-2">
            <input id="username" name="username" required class="block w-full px-3 rounded-md border-0 py-1.5 text-gray-900">
          </div>
        </div>
        <div>
          <label for="password" class="block text-sm font-medium leading-6 text-gray-900">Password</label>
          <div class="mt-2">
            <input id="password" name="passwd" type="password" required class="block w-full px-3 rounded-md border-0 py-1.5 text-gray-900">
          </div>
        </div>
        <div>
          <button type="submit" class="flex w-full justify-center rounded-md bg-blue-600 px-3 py-1.5 text-sm font-semibold leading-6 text-white">Sign in</button>
        </div>
      </form>
      <p class="mt-10 text-center text-sm text-gray-500">
        Not using Istio yet?
        <a href="https://istio.io" target="_blank" class="font-semibold leading-6 text-blue-600 hover:text-blue-500">Start here</a>
      </p>
    </div>
  </div>
</dialog>
"""


def _tw_nav(user: Any) -> str:
    if user:
        who = f"""        <a href="#" class="group block flex-shrink-0">
          <div class="flex items-center">
            <div>
              <img class="inline-block h-9 w-9 rounded-full bg-blue-50" src="/static/img/izzy.png" alt="">
            </div>
            <div class="ml-4">
              <p class="text-base font-medium text-gray-50">{escape(user)}</p>
              <a href="logout" class="text-xs font-medium text-gray-400 hover:text-gray-300">Sign out</a>
            </div>
          </div>
        </a>
"""
    else:
        who = """          <button type="button" id="sign-in-button" class="rounded-md bg-blue-600 px-3.5 py-2.5 text-sm font-semibold text-white shadow-sm hover:bg-blue-500">
            Sign in
          </button>
"""
    return f"""
<nav class="bg-gray-800">
  <div class="container mx-auto px-4 sm:px-6 lg:px-8">
    <div class="relative flex h-16 items-center justify-between">
      <a href="#" class="text-white px-3 py-2 text-lg font-medium" aria-current="page">BookInfo Sample</a>
      <div class="absolute inset-y-0 right-0 flex items-center pr-2 sm:static sm:inset-auto sm:ml-6 sm:pr-0">
{who}      </div>
    </div>
  </div>
</nav>
"""


def _tw_details(status: int, details: Any) -> str:
    if status == 200:
        cell = lambda key: _show(_get(details, key))  # noqa: E731
        return f"""          <h4 class="text-3xl font-semibold">Book Details</h4>
          <div class="-mx-4 -my-2 overflow-x-auto sm:-mx-6 lg:-mx-8">
            <div class="inline-block min-w-full py-2 align-middle sm:px-6 lg:px-8">
              <table class="min-w-full divide-y divide-gray-300">
                <thead>
                  <tr>
                    <th scope="col" class="whitespace-nowrap py-3.5 pl-4 pr-3 text-left text-sm font-semibold text-gray-900 sm:pl-0">ISBN-10</th>
                    <th scope="col" class="whitespace-nowrap px-2 py-3.5 text-left text-sm font-semibold text-gray-900">Publisher</th>
                    <th scope="col" class="whitespace-nowrap px-2 py-3.5 text-left text-sm font-semibold text-gray-900">Pages</th>
                    <th scope="col" class="whitespace-nowrap px-2 py-3.5 text-left text-sm font-semibold text-gray-900">Type</th>
                    <th scope="col" class="whitespace-nowrap px-2 py-3.5 text-left text-sm font-semibold text-gray-900">Language</th>
                  </tr>
                </thead>
                <tbody class="divide-y divide-gray-200 bg-white">
                  <tr>
                    <td class="whitespace-nowrap py-2 pl-4 pr-3 text-sm text-gray-500 sm:pl-0">{cell("ISBN-10")}</td>
                    <td class="whitespace-nowrap px-2 py-2 text-sm font-medium text-gray-900">{cell("publisher")}</td>
                    <td class="whitespace-nowrap px-2 py-2 text-sm text-gray-900">{cell("pages")}</td>
                    <td class="whitespace-nowrap px-2 py-2 text-sm text-gray-500">{cell("type")}</td>
                    <td class="whitespace-nowrap px-2 py-2 text-sm text-gray-500">{cell("language")}</td>
                  </tr>
                </tbody>
              </table>
            </div>
          </div>
"""
    out = '          <p class="text-2xl text-red-500">Error fetching product details</p>\n'
    if details:
        out += f'          <p class="text-lg text-gray-600">{_show(_get(details, "error"))}</p>\n'
    return out


def _tw_stars(rating: Mapping, star_svg_id: bool) -> str:
    stars = _star_count(rating)
    # Image 1.20.2+ tags each filled star with this id so grep-based tests keep working.
    star_id = 'id="glyphicon glyphicon-star" ' if star_svg_id else ""
    filled = (
        f'              <svg {star_id}class="h-5 w-5 flex-none" viewBox="0 0 20 20" '
        f'fill="currentColor" aria-hidden="true">\n                {_TW_FILLED_PATH}\n'
        "              </svg>\n"
    )
    empty = (
        '              <svg xmlns="http://www.w3.org/2000/svg" fill="none" viewBox="0 0 24 24" '
        'stroke-width="1.5" stroke="currentColor" class="h-5 w-5 flex-none">\n'
        f"                {_TW_EMPTY_PATH}\n              </svg>\n"
    )
    return (
        f'            <div class="flex gap-x-1 text-{_show(rating.get("color"))}-500">\n'
        + filled * max(stars, 0)
        + empty * max(5 - stars, 0)
        + "            </div>\n"
    )


def _tw_review(review: Any, reviews: Any, star_svg_id: bool) -> str:
    rating = _get(review, "rating")
    mark = ""
    if rating and isinstance(rating, Mapping):
        if _get(rating, "stars"):
            mark = _tw_stars(rating, star_svg_id)
        elif _get(rating, "error"):
            mark = f'            <p class="text-red-500">{_show(rating["error"])}</p>\n'
    cluster = _get(reviews, "clustername")
    on_cluster = (
        f"                  on cluster <div>{_show(cluster)}</div>\n" if cluster != "null" else ""
    )
    return f"""        <section class="px-6 py-12 sm:py-8 lg:px-8">
          <div class="mx-auto max-w-2xl">
{mark}            <blockquote class="mt-10 text-xl font-semibold leading-8 tracking-tight text-gray-900 sm:text-2xl sm:leading-9">
              <p>"{_show(_get(review, "text"))}"</p>
            </blockquote>
            <div class="mt-4 flex items-center gap-x-6">
              <img class="h-16 w-16 rounded-full bg-gray-50" src="/static/img/izzy.png" alt="Izzy">
              <div class="text-sm leading-6">
                <div class="font-semibold text-gray-900">{_show(_get(review, "reviewer"))}</div>
                <div class="mt-0.5 text-gray-600 font-mono">Reviews served by: 
                  {_show(_get(reviews, "podname"))}
{on_cluster}                </div>
              </div>
            </div>
        </section>
"""


def _tw_reviews(status: int, reviews: Any, star_svg_id: bool) -> str:
    if status == 200:
        items = _get(reviews, "reviews") or []
        body = "".join(_tw_review(r, reviews, star_svg_id) for r in items)
        return (
            '      <h4 class="text-3xl font-semibold">Book Reviews</h4>\n'
            '      <div class="flex flex-col md:flex-row">\n'
            f"{body}      </div>\n"
        )
    out = '      <p class="text-2xl text-red-500">Error fetching product reviews</p>\n'
    if reviews:
        out += f'      <p class="text-lg text-gray-600">{_show(_get(reviews, "error"))}</p>\n'
    return out


def _tailwind_page(ctx: Mapping[str, Any], star_svg_id: bool) -> str:
    product = ctx["product"] or {}
    # The real template has an unterminated class attribute on the reviews container
    # (`lg:px-8>`); it is kept so page checks are exercised against the real markup.
    return f"""{_TW_HEAD}{_tw_nav(ctx["user"])}{_TW_DIALOG}
<!-- Book description section -->
<div class="container mt-8 mx-auto px-4 sm:px-6 lg:px-8">
  <h1 class="text-5xl font-bold tracking-tight text-blue-900">{_show(product.get("title"))}</h1>
  <div class="mt-6 max-w-4xl">
    <p class="mt-6 text-xl leading-8 text-gray-600">{product.get("descriptionHtml", "")}</p>
    <div class="mt-6">
      <a href="https://istio.io" target="_blank" class="text-sm font-semibold leading-6 text-blue-600 hover:text-blue-700">Learn more about Istio <span aria-hidden="true">→</span></a>
    </div>
  </div>
</div>

<!-- Book details table -->
<div class="container mt-8 mx-auto px-4 sm:px-6 lg:px-8">
  <div class="mt-4 py-10">
      <div class="max-w-2xl">
        <div class="flow-root">
{_tw_details(ctx["details_status"], ctx["details"])}        </div>
      </div>
  </div>
</div>

<!-- Book reviews section -->
<div class="bg-blue-600/5 py-12 mx-auto" >
  <div class="container mx-auto px-4 sm:px-6 lg:px-8>
    <div class="max-w-2xl">
{_tw_reviews(ctx["reviews_status"], ctx["reviews"], star_svg_id)}    </div>
    </div>
  </div>
</div>
"""


# ---------------------------------------------------------------------------------------
# Legacy template (Bootstrap; images <= 1.19.1)
# ---------------------------------------------------------------------------------------


def _bs_nav(user: Any) -> str:
    if user:
        who = f"""    <p class="navbar-text navbar-right">
      <i class="glyphicon glyphicon-user" aria-hidden="true"></i>
      <span style="padding-left: 5px;">{escape(user)} ( <a href="logout">sign out</a> )</span>
    </p>
"""
    else:
        who = """    <button type="button" class="btn btn-default navbar-btn navbar-right" data-toggle="modal" href="#login-modal">Sign
      in</button>
"""
    return f"""<nav class="navbar navbar-inverse navbar-static-top">
  <div class="container">
    <div class="navbar-header">
      <a class="navbar-brand" href="#">BookInfo Sample</a>
    </div>
{who}  </div>
</nav>

<div id="login-modal" class="modal fade" role="dialog">
  <div class="modal-dialog">
    <div class="modal-content">
      <div class="modal-header">
        <button type="button" class="close" data-dismiss="modal">&times;</button>
        <h4 class="modal-title">Please sign in</h4>
      </div>
      <div class="modal-body">
        <form method="post" action='login' name="login_form">
          <p><input type="text" class="form-control" name="username" id="username" placeholder="User Name"></p>
          <p><input type="password" class="form-control" name="passwd" placeholder="Password"></p>
          <p>
            <button type="submit" class="btn btn-primary">Sign in</button>
            <button type="button" class="btn btn-default" data-dismiss="modal">Cancel</button>
          </p>
        </form>
      </div>
    </div>
  </div>
</div>
"""


def _bs_details(status: int, details: Any) -> str:
    if status == 200:
        rows = "".join(
            f"        <dt>{label}:</dt>{_show(_get(details, key))}\n"
            for label, key in [
                ("Type", "type"),
                ("Pages", "pages"),
                ("Publisher", "publisher"),
                ("Language", "language"),
                ("ISBN-10", "ISBN-10"),
                ("ISBN-13", "ISBN-13"),
            ]
        )
        return (
            '      <h4 class="text-center text-primary">Book Details</h4>\n'
            f"      <dl>\n{rows}      </dl>\n"
        )
    out = '      <h4 class="text-center text-primary">Error fetching product details!</h4>\n'
    if details:
        out += f'      <p>{_show(_get(details, "error"))}</p>\n'
    return out


def _bs_review(review: Any, reviews: Any) -> str:
    rating = _get(review, "rating")
    mark = ""
    if rating and isinstance(rating, Mapping):
        if _get(rating, "stars"):
            stars = _star_count(rating)
            mark = (
                f'        <font color="{_show(rating.get("color"))}">\n'
                "          <!-- full stars: -->\n"
                + '          <span class="glyphicon glyphicon-star"></span>\n' * max(stars, 0)
                + "          <!-- empty stars: -->\n"
                + '          <span class="glyphicon glyphicon-star-empty"></span>\n'
                * max(5 - stars, 0)
                + "        </font>\n"
            )
        elif _get(rating, "error"):
            mark = f"        <p><i>{_show(rating['error'])}</i></p>\n"
    cluster = _get(reviews, "clustername")
    on_cluster = f"        on cluster <u>{_show(cluster)}</u>\n" if cluster != "null" else ""
    return f"""      <blockquote>
        <p>{_show(_get(review, "text"))}</p>
        <small>{_show(_get(review, "reviewer"))}</small>
{mark}      </blockquote>
      <dl>
        <dt>Reviews served by:</dt>
        <u>{_show(_get(reviews, "podname"))}</u>
{on_cluster}      </dl>
"""


def _bs_reviews(status: int, reviews: Any) -> str:
    if status == 200:
        items = _get(reviews, "reviews") or []
        return '      <h4 class="text-center text-primary">Book Reviews</h4>\n' + "".join(
            _bs_review(r, reviews) for r in items
        )
    out = '      <h4 class="text-center text-primary">Error fetching product reviews!</h4>\n'
    if reviews:
        out += f'      <p>{_show(_get(reviews, "error"))}</p>\n'
    return out


def _bootstrap_page(ctx: Mapping[str, Any]) -> str:
    product = ctx["product"] or {}
    return f"""<!DOCTYPE html>
<html>
  <head>
    <title>Simple Bookstore App</title>
<meta charset="utf-8">
<meta http-equiv="X-UA-Compatible" content="IE=edge">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="static/bootstrap/css/bootstrap.min.css">
<link rel="stylesheet" href="static/bootstrap/css/bootstrap-theme.min.css">
  </head>
  <body>
{_bs_nav(ctx["user"])}
<div class="container-fluid">
  <div class="row">
    <div class="col-md-12">
      <h3 class="text-center text-primary">{_show(product.get("title"))}</h3>
      <p>Summary: {product.get("descriptionHtml", "")}</p>
    </div>
  </div>

  <div class="row">
    <div class="col-md-6">
{_bs_details(ctx["details_status"], ctx["details"])}    </div>

    <div class="col-md-6">
{_bs_reviews(ctx["reviews_status"], ctx["reviews"])}    </div>
  </div>
</div>
<script src="static/jquery.min.js"></script>
<script src="static/bootstrap/js/bootstrap.min.js"></script>
  </body>
</html>
"""


def product_page(
    ui: str,
    *,
    star_svg_id: bool,
    user: Any,
    product: Mapping[str, Any] | None,
    details_status: int,
    details: Any,
    reviews_status: int,
    reviews: Any,
) -> str:
    """The /productpage HTML for the UI flavour of the emulated image ("tailwind"/"bootstrap")."""
    ctx = dict(
        user=user,
        product=product,
        details_status=details_status,
        details=details,
        reviews_status=reviews_status,
        reviews=reviews,
    )
    if ui == "bootstrap":
        return _bootstrap_page(ctx)
    return _tailwind_page(ctx, star_svg_id)


# ---------------------------------------------------------------------------------------
# Landing page and stock Flask/Werkzeug pages
# ---------------------------------------------------------------------------------------


def _json_table(value: Any, attributes: str = "") -> str:
    """A json2html-like rendering: dicts as key/value tables, lists of dicts as tables."""
    attrs = f" {attributes}" if attributes else ""
    if isinstance(value, Mapping):
        rows = "".join(
            f"<tr><th>{escape(k)}</th><td>{_json_table(v)}</td></tr>" for k, v in value.items()
        )
        return f"<table{attrs}>{rows}</table>"
    if isinstance(value, list):
        if value and all(isinstance(v, Mapping) for v in value):
            keys = list(value[0].keys())
            head = "".join(f"<th>{escape(k)}</th>" for k in keys)
            body = "".join(
                "<tr>" + "".join(f"<td>{_json_table(v.get(k))}</td>" for k in keys) + "</tr>"
                for v in value
            )
            return f"<table{attrs}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        return "<ul>" + "".join(f"<li>{_json_table(v)}</li>" for v in value) + "</ul>"
    return escape(value)


def index_page(service_tree: Mapping[str, Any]) -> str:
    """The / landing page: the service tree as a table plus the normal/test user links."""
    table = _json_table(
        service_tree, 'class="table table-condensed table-bordered table-hover"'
    )
    return f"""<!DOCTYPE html>
<html>
  <head>
    <title>Simple Bookstore App</title>
    <meta charset="utf-8">
  </head>
  <body>
<div class="container">
  <div class="row">
    <div class="col-md-12">
      <h3>Hello! This is a simple bookstore application consisting of three services as shown below</h3>
    </div>
  </div>
  <div class="row">
    <div class="col-md-12">
      {table}
    </div>
  </div>
  <div class="row">
    <div class="col-md-12">
      <h4>Click on one of the links below to auto generate a request to the backend as a real user or a tester</h4>
    </div>
  </div>
  <p><a href="/productpage?u=normal">Normal user</a></p>
  <p><a href="/productpage?u=test">Test user</a></p>
</div>
  </body>
</html>
"""


def werkzeug_error(code: int, name: str, description: str) -> str:
    """Werkzeug's stock HTTPException page."""
    return (
        "<!doctype html>\n<html lang=en>\n"
        f"<title>{code} {name}</title>\n<h1>{name}</h1>\n<p>{description}</p>\n"
    )


NOT_FOUND = werkzeug_error(
    404,
    "Not Found",
    "The requested URL was not found on the server. If you entered the URL manually "
    "please check your spelling and try again.",
)
METHOD_NOT_ALLOWED = werkzeug_error(
    405, "Method Not Allowed", "The method is not allowed for the requested URL."
)
INTERNAL_SERVER_ERROR = werkzeug_error(
    500,
    "Internal Server Error",
    "The server encountered an internal error and was unable to complete your request. "
    "Either the server is overloaded or there is an error in the application.",
)


def redirect_page(location: str) -> str:
    """Werkzeug's redirect() body."""
    loc = escape(location)
    return (
        "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n"
        "<h1>Redirecting...</h1>\n"
        "<p>You should be redirected automatically to the target URL: "
        f'<a href="{loc}">{loc}</a>. If not, click the link.\n'
    )


def webrick_not_found(path: str, host: str) -> str:
    """WEBrick's 404 page (details)."""
    return f"""<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.0//EN">
<HTML>
  <HEAD><TITLE>Not Found</TITLE></HEAD>
  <BODY>
    <H1>Not Found</H1>
    `{escape(path)}' not found.
    <HR>
    <ADDRESS>
     WEBrick/1.8.1 (Ruby/3.3.6/2024-11-05) at
     {escape(host)}
    </ADDRESS>
  </BODY>
</HTML>
"""
