"""The suite's own hygiene: an app a test made is garbage once the test is over (the reason is
in tests/conftest.py, FASTAPI_CACHES: kept, they made a worker's collections outlast a lease)."""

from __future__ import annotations

import gc
import weakref

import httpx

from app.core.settings import Settings
from app.main import create_app
from tests.conftest import forget_the_apps_fastapi_keeps


async def test_an_app_that_served_a_request_is_collected_once_forgotten(
    settings: Settings, database_url: str
) -> None:
    app = create_app(settings, database_url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/v1/queues")).status_code == 401
    gone = weakref.ref(app)
    del app, transport, http

    forget_the_apps_fastapi_keeps()
    gc.collect()

    assert gone() is None
