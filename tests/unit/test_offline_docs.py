"""Every app that serves /docs serves Swagger UI and ReDoc from its own assets (no CDN)."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from services.api.app import create_app as api_app
from services.api.config import ApiSettings
from services.ingest.app import create_app as ingest_app
from services.ingest.config import IngestSettings


def _api(tmp_path: Path) -> FastAPI:
    return api_app(ApiSettings(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/api.db"))


def _ingest(tmp_path: Path) -> FastAPI:
    return ingest_app(IngestSettings(KAFKA_BOOTSTRAP="127.0.0.1:1"))


ASSET = re.compile(r"""(?:src|href|url)\s*[=:(]\s*['"]([^'"]+)['"]""")


@pytest.mark.parametrize("make", [_api, _ingest], ids=["api", "ingest"])
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_docs_load_only_from_the_app(
    make: Callable[[Path], FastAPI], page: str, tmp_path: Path
) -> None:
    # No lifespan: the documentation needs no database, broker or network.
    transport = httpx.ASGITransport(app=make(tmp_path))
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.get(page)
        assert response.status_code == 200
        assets = ASSET.findall(response.text)
        assert any(asset.endswith(".js") for asset in assets), response.text
        for asset in assets:
            assert asset.startswith("/"), f"{page} loads {asset} from another origin"
            assert (await client.get(asset)).status_code == 200, asset
