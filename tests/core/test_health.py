from __future__ import annotations

import httpx

from app.core.settings import Settings
from app.main import create_app
from tests.support import LiveServer


async def test_health_says_the_database_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "up"}


async def test_health_is_503_when_the_database_is_gone(settings: Settings) -> None:
    unreachable = "postgresql+asyncpg://nobody@127.0.0.1:1/none"
    app = create_app(settings, unreachable)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await http.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "degraded", "database": "down"}


async def test_health_over_a_real_socket(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.base_url) as http:
        response = await http.get("/health")
    assert response.json()["database"] == "up"
    assert response.headers["x-request-id"]
