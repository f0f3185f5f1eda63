"""The wallboard page: served at `/`, only local assets, only API routes that exist."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.api.app import create_app
from services.api.config import ApiSettings
from services.api.routes import wallboard
from services.kit.problems import install_problem_handlers

STATIC = Path(wallboard.__file__).resolve().parents[1] / "static"
MODULES = {path.name: path.read_text() for path in sorted((STATIC / "js").glob("*.js"))}
JS = "\n".join(MODULES.values())


class _Refs(HTMLParser):
    """Every URL the page loads: src, href (stylesheets, icons) and inline script/style."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._tag = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag = tag
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)
            if name == "style" or name.startswith("on"):
                self.inline.append(f"{tag} {name}")

    def handle_data(self, data: str) -> None:
        if self._tag in ("script", "style") and data.strip():
            self.inline.append(f"{self._tag} body")

    def handle_endtag(self, tag: str) -> None:
        self._tag = ""


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_problem_handlers(app)
    app.include_router(wallboard.router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://x") as c:
        yield c


async def test_the_page_is_served_at_the_root_with_a_strict_policy(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "<title>callpulse wallboard</title>" in response.text
    head = await client.head("/")
    assert head.status_code == 200


async def test_the_page_loads_only_local_assets_that_exist(client: httpx.AsyncClient) -> None:
    refs = _Refs()
    refs.feed((await client.get("/")).text)
    assert refs.urls, "the page references its script and stylesheet"
    assert not refs.inline, "inline script or style would break the Content-Security-Policy"
    # Relative URLs: the board also works behind a reverse proxy's path prefix.
    for url in refs.urls:
        assert url.startswith("static/"), url
        response = await client.get(f"/{url}")
        assert response.status_code == 200, url
        assert response.content
    kinds = {(await client.get(f"/{u}")).headers["content-type"].split(";")[0] for u in refs.urls}
    assert {"text/javascript", "text/css", "image/svg+xml"} <= kinds


def test_no_asset_reaches_another_origin() -> None:
    for path in STATIC.rglob("*"):
        if not path.is_file():
            continue
        text = path.read_text()
        text = text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # a namespace, not a fetch
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), path.name
        assert "@import" not in text, path.name
        assert "url(http" not in text, path.name


@pytest.mark.parametrize(
    "name",
    [
        "wallboard.py",
        "..%2Fwallboard.py",
        "..%2F..%2Fapp.py",
        ".hidden",
        "nope.js",
        "js/nope.js",
        "js/..%2F..%2Fapp.py",
        "js%2F..%2F..%2Froutes%2Fwallboard.py",
        "main.js",
        "js/js/main.js",
    ],
)
async def test_only_the_static_files_are_served(client: httpx.AsyncClient, name: str) -> None:
    response = await client.get(f"/static/{name}")
    assert response.status_code == 404


async def test_the_script_calls_only_api_routes_that_exist(tmp_path: Path) -> None:
    used = set(re.findall(r"[`\"](v1/[a-z/]+)", JS))
    assert used == {
        "v1/teams/",
        "v1/teams",
        "v1/leaderboard",
        "v1/stream",
        "v1/alerts",
        "v1/competitions",
        "v1/competitions/",
    }
    app = create_app(ApiSettings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/api.db"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://x") as c:
        # Without a key an existing route answers 401; a missing one would be a 404.
        for path in (
            "/v1/teams/t1/kpis?window=15m",
            "/v1/leaderboard?metric=dials",
            "/v1/stream",
            "/v1/teams",
            "/v1/competitions",
            "/v1/competitions/1/standings",
        ):
            assert (await c.get(path)).status_code == 401, path
    # /v1/alerts is optional: the page tolerates its absence and takes alerts from the stream;
    # facing an older server without /v1/teams it finds teams, unnamed, in the leaderboard.
    # EventSource cannot send the Authorization header: the stream is read with fetch().
    assert "EventSource(" not in JS
    assert "Authorization: `Bearer ${state.key}`" in JS


def _keys(block: str) -> set[str]:
    # Keys are `name:` or `"name":`; drop every other string literal so its text never counts.
    quoted = set(re.findall(r'"([a-z0-9_]+)"\s*:', block))
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', block)
    return quoted | set(re.findall(r"\b([a-z0-9_]+):\s", bare))


def test_every_label_has_both_languages() -> None:
    i18n = MODULES["i18n.js"]
    start = i18n.index("export const I18N = {")
    en = i18n.index("\n  en: {", start)
    zh = i18n.index("\n  zh: {", start)
    end = i18n.index("\n};", zh)
    english, chinese = _keys(i18n[en + 8 : zh]), _keys(i18n[zh + 8 : end])
    assert len(english) > 40
    # English has singular variants (`*_one`); Chinese has no plural forms.
    assert {k for k in english if not k.endswith("_one")} == chinese
    assert {k.removesuffix("_one") for k in english} <= english


async def test_the_api_app_serves_the_wallboard(tmp_path: Path) -> None:
    """Needs `wallboard` in the routers that services.api.app.install() includes."""
    app = create_app(ApiSettings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/api.db"))
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://x") as c:
        page = await c.get("/")
        script = await c.get("/static/js/main.js")
    assert page.status_code == 200, "install() does not include services.api.routes.wallboard"
    assert '<script type="module" src="static/js/main.js">' in page.text
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")


async def test_every_module_import_is_a_served_module(client: httpx.AsyncClient) -> None:
    """ES modules without a build step: each `from "./x.js"` must be a file the route serves,
    and every module is reachable from main.js (a module nobody imports never runs)."""
    reached: set[str] = set()
    todo = ["main.js"]
    while todo:
        name = todo.pop()
        if name in reached:
            continue
        reached.add(name)
        assert name in MODULES, f"{name} is imported but does not exist"
        response = await client.get(f"/static/js/{name}")
        assert response.status_code == 200, name
        assert response.headers["content-type"].startswith("text/javascript"), name
        todo += re.findall(r'from "\./([a-z0-9_-]+\.js)"', MODULES[name])
    assert reached == set(MODULES), "modules nobody imports"
    assert all("require(" not in text for text in MODULES.values())
