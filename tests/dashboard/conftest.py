"""An in-process gateway for browser tests: real Tansu and ledger, the ledger projection and
the DLQ recorder running, REST (with the dashboard) served by uvicorn on a free port."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from mlmesh_common.broker import free_port, wait_for_port
from mlmesh_common.runtime import Service
from mlmesh_common.settings import Settings
from mlmesh_gateway.dead_letters import DeadLetterRecorder
from mlmesh_gateway.experiments import Experiments
from mlmesh_gateway.rest import create_app
from mlmesh_gateway.security import Security
from mlmesh_gateway.service import PROJECTED_TOPICS, project

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or ""
#: Screenshots the browser tests keep (gitignored; CI uploads the folder).
SCREENSHOTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"


@dataclass
class LiveGateway:
    url: str
    service: Service
    security: Security
    admin_key: str


async def _serve(service: Service, consume: bool) -> AsyncIterator[LiveGateway]:
    security = Security(service)
    app = create_app(Experiments(service), None, security)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                           access_log=False, lifespan="off"))
    if consume:
        await service.start()
    task = asyncio.create_task(server.serve())
    await asyncio.to_thread(wait_for_port, "127.0.0.1", port, 30)
    try:
        yield LiveGateway(f"http://127.0.0.1:{port}", service, security,
                          await security.mint("admin", ["*"], "dashboard test admin"))
    finally:
        server.should_exit = True
        await task
        await app.state.ops.stop()
        if consume:
            await service.stop()


@pytest.fixture
async def live_gateway(mesh_settings: Settings) -> AsyncIterator[LiveGateway]:
    """The gateway with its projection and DLQ recorder consuming the broker."""
    service = Service("gateway", settings=mesh_settings)
    for topic in PROJECTED_TOPICS:
        service.handles(topic, group="gateway")(project)
    recorder = DeadLetterRecorder(service)
    service.on_start.append(recorder.start)
    service.on_stop.append(recorder.stop)
    async for gateway in _serve(service, consume=True):
        yield gateway


@pytest.fixture
async def idle_gateway(tmp_path: Path) -> AsyncIterator[LiveGateway]:
    """The gateway's REST API and dashboard only (no broker): for pages that read nothing."""
    service = Service("gateway", settings=Settings(home=tmp_path / "home",
                                                   kafka_bootstrap="127.0.0.1:1"))
    async for gateway in _serve(service, consume=False):
        yield gateway


@pytest.fixture
async def browser_page() -> AsyncIterator:
    """A headless Chromium page (Debian's chromium; playwright downloads nothing)."""
    playwright_api = pytest.importorskip("playwright.async_api")
    if not CHROMIUM:
        pytest.skip("chromium is not installed; run scripts/install_system_deps.sh")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with playwright_api.async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox", "--disable-gpu"])
        page = await browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            await browser.close()
