"""Fuzz the control API from its own OpenAPI document (schemathesis, valid and invalid inputs):
no input makes it answer 5xx, and no route answers without a token unless it is public."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, settings  # noqa: E402

from node.control.api import create_app, routes  # noqa: E402
from node.control.openapi import openapi_document  # noqa: E402
from node.control.storage import open_storage  # noqa: E402

pytestmark = pytest.mark.integration

TOKENS = [("fuzz-node-token-0123456789", "fuzz-node", "node"),
          ("fuzz-operator-token-0123456789", "fuzz-op", "operator")]
TOKEN_FOR = {"node": "fuzz-node-token-0123456789", "operator": "fuzz-operator-token-0123456789"}

schema = schemathesis.openapi.from_dict(openapi_document(routes))
schema.config.generation.update(modes=[schemathesis.GenerationMode.POSITIVE,
                                       schemathesis.GenerationMode.NEGATIVE])


@pytest.fixture(scope="module")
def control_url(tmp_path_factory) -> Iterator[str]:
    """A control plane on its own loop in a thread (schemathesis calls it synchronously)."""
    from aiohttp import web

    db = tmp_path_factory.mktemp("fuzz") / "control.db"
    loop = asyncio.new_event_loop()
    started = threading.Event()
    state: dict = {}

    async def serve() -> None:
        storage = await open_storage(f"sqlite:///{db}")
        runner = web.AppRunner(create_app(storage, tokens=TOKENS, close_storage=True))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        state["url"] = f"http://127.0.0.1:{runner.addresses[0][1]}"
        state["stop"] = asyncio.Event()
        started.set()
        await state["stop"].wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(15), "control plane did not start"
    yield state["url"]
    loop.call_soon_threadsafe(state["stop"].set)
    thread.join(15)
    loop.close()


@schema.parametrize()
@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.filter_too_much])
def test_no_server_errors_and_no_open_routes(case, control_url):
    roles = case.operation.definition.raw.get("x-roles", [])
    public = roles == ["public"]
    role = "node" if "node" in roles else "operator"
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}

    if not public:
        anonymous = case.call(base_url=control_url, headers=headers, timeout=10)
        assert anonymous.status_code == 401, (case.method, case.path, anonymous.text)

    response = case.call(base_url=control_url,
                         headers={**headers, "Authorization": f"Bearer {TOKEN_FOR[role]}"},
                         timeout=30)
    assert response.status_code < 500, (case.method, case.formatted_path, response.text)
    if response.status_code >= 400:
        ctype = (response.headers.get("content-type") or [""])[0]
        assert ctype.startswith("application/problem+json"), (
            case.method, case.formatted_path, response.status_code, response.text[:300])
        assert "Traceback" not in response.text
