"""Browser tests: Playwright driving Debian's Chromium (installed by scripts/install-chromium
when missing; never a browser download) against a real `timebank serve` process on the demo.

Screenshots of the main pages, at phone and desktop widths, go to test-output/screenshots/.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright

from tests.conftest import SERVER_URL, server_database

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-output" / "screenshots"
CHROMIUM_FLAGS = [  # headless, and quiet on a machine with no network beyond localhost
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
PHONE: ViewportSize = {"width": 390, "height": 844}
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
SERIOUS = ("serious", "critical")


@dataclass
class Site:
    url: str
    db: Path
    passwords: dict[str, str]  # demo login -> password
    tokens: dict[str, str]  # demo label -> API bearer token

    def api(self, path: str, token_label: str, **params: str) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[token_label]}"}
        return httpx.get(f"{self.url}/api/v1{path}", headers=headers, params=params, timeout=60)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium, installed by scripts/install-chromium if missing (a failure if it
    cannot be, never a skip)."""
    done = subprocess.run([str(ROOT / "scripts" / "install-chromium")], capture_output=True,
                          text=True, check=False)  # fmt: skip
    found = shutil.which("chromium")
    assert found, f"these tests need Chromium; scripts/install-chromium said: {done.stderr}"
    return found


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The demo (built once) served by a real `timebank serve` subprocess."""
    where = tmp_path_factory.mktemp("site")
    db = where / "demo.db"
    cli = str(Path(sys.executable).parent / "timebank")
    env = os.environ | {"TIMEBANK_KEY_DIR": str(where / "keys")}
    subprocess.run([cli, "demo", "--db", str(db), "--entries", "600"], check=True, env=env,
                   capture_output=True)  # fmt: skip
    databases = ExitStack()  # on a server run, the demo copied to a database of its own there
    served = databases.enter_context(server_database()) if SERVER_URL else str(db)
    if SERVER_URL:
        copied = subprocess.run([cli, "migrate-store", "--from", str(db), "--to", served],
                                env=env, capture_output=True, text=True, check=False)  # fmt: skip
        assert copied.returncode == 0, copied.stdout + copied.stderr
    port = _free_port()
    server = subprocess.Popen(
        [cli, "serve", "--db", served, "--port", str(port), "--schedule-seconds", "0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read().decode() if server.stderr else ""
            assert time.monotonic() < deadline, "the server did not start in 30 s"
            time.sleep(0.1)
        yield Site(url, db, json.loads(Path(f"{db}.accounts.json").read_text()),
                   json.loads(Path(f"{db}.tokens.json").read_text()))  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=30)
        databases.close()


@pytest.fixture(scope="module")
def browser(chromium: str) -> Iterator[Browser]:
    """Per module, not per session: Playwright's sync API runs an event loop on this thread
    while it is open, and the async tests that follow need the thread without one."""
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, locale="en-GB")
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()


def sign_in(page: Page, site: Site, login: str) -> None:
    page.goto(f"{site.url}/sign-in")
    page.get_by_label("Login").fill(login)
    page.get_by_label("Password").fill(site.passwords[login])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert "/sign-in" not in page.url, page.content()[:2000]


def check_page(page: Page, name: str) -> list[str]:
    """Screenshots at phone and desktop widths, and axe-core's serious or critical violations
    (as "rule: help (n nodes)") of the page as it stands."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(SHOTS / f"{name}-{label}.png"), full_page=True)
    results = Axe().run(page)
    found = results.response["violations"]
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)" for v in found
            if v.get("impact") in SERIOUS]  # fmt: skip
