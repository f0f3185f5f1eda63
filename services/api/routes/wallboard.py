"""The wallboard: `GET /` serves a static page, `GET /static/{name}` its assets (no build step:
the script is ES modules under `static/js/`, loaded by the browser as they are), and
`GET /static/glossary.json` the KPI and window names it shows (`schemas.glossary`).

The page authenticates like any client (a bearer key it asks for once), so serving it needs
no key. Assets are a fixed set read from the package folder and its `js/` folder: a name that
is not one of them is a 404, whatever it contains, so no path reaches outside the folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

from schemas.glossary import GLOSSARY, Glossary
from services.kit.problems import Problem

STATIC = Path(__file__).resolve().parent.parent / "static"
PAGE = "wallboard.html"

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

# Only local resources: the floor's TVs have no internet, and a key typed into the page must
# not leak to another origin. `?key=` URLs are kept out of Referer headers for the same reason.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'self'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    # Revalidate every load (cheap: ETag), so a new release reaches every TV on its next reload.
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["wallboard"])

GLOSSARY_JSON = GLOSSARY.model_dump_json().encode()


SUBFOLDERS = ("", "js/")


def assets() -> dict[str, Path]:
    """The servable files by name (`wallboard.css`, `js/main.js`): everything in the static
    folder and its `js/` folder with a known media type."""
    found: dict[str, Path] = {}
    for prefix in SUBFOLDERS:
        folder = STATIC / prefix
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_file() and path.suffix in MEDIA_TYPES and not path.name.startswith("."):
                found[prefix + path.name] = path
    return found


def _file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=MEDIA_TYPES[path.suffix], headers=SECURITY_HEADERS)


@router.head("/", include_in_schema=False)
@router.get(
    "/",
    response_class=FileResponse,
    summary="The wallboard page",
    description="A live board for a sales-floor TV: team totals against targets, a rep table "
    "with live status, a leaderboard and firing alerts, in English or Simplified Chinese. "
    "It asks for an API key once (or takes `?key=`); other parameters: `team`, `window`, "
    "`lang` (`en`, `zh`), `sort`, `metric` (leaderboard), `currency` (ISO 4217).",
    responses={200: {"content": {"text/html": {}}, "description": "The page."}},
)
async def wallboard() -> FileResponse:
    """The wallboard page."""
    return _file(STATIC / PAGE)


@router.head("/static/glossary.json", include_in_schema=False)
@router.get(
    "/static/glossary.json",
    response_model=Glossary,
    summary="KPI and window names in English and Simplified Chinese",
    description="The glossary the wallboard's labels and the alert messages share: for every "
    "KPI its name (`en`, `zh`), a short name for narrow columns and its unit (`count`, "
    "`seconds`, `ratio` 0..1, `currency`, `score` 1-5); for every window its name. Static: "
    "it changes only with a release, so it needs no key, like the page.",
)
async def glossary() -> Response:
    """The KPI and window names."""
    return Response(GLOSSARY_JSON, media_type="application/json", headers=SECURITY_HEADERS)


@router.api_route("/static/{name:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def static_asset(
    name: Annotated[str, PathParam(min_length=1, max_length=100)],
) -> FileResponse:
    """One of the page's assets."""
    path = assets().get(name)
    if path is None:
        raise Problem(404, "Not found", f"No static asset {name!r}.")
    return _file(path)
