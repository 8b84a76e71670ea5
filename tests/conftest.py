"""Shared fixtures: real data under ../shared/data, and a private decoded-image cache per test session."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def _require(path: Path) -> Path:
    if path.exists():
        return path
    reason = f"real data {path} is absent (it lives in ../shared/data beside the checkout)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI is set, so this test must not skip")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The ../shared/data folder; skips when absent, fails when absent under CI."""
    return _require(SHARED_DATA)


@pytest.fixture(scope="session")
def mnist_dir(shared_data: Path) -> Path:
    return _require(shared_data / "mnist")


@pytest.fixture(scope="session")
def celeba_dir(shared_data: Path) -> Path:
    return _require(shared_data / "celeba" / "img_align_celeba_89x109")


@pytest.fixture(scope="session")
def wifi_file(shared_data: Path) -> Path:
    return _require(shared_data / "wifi" / "wifi_localization.txt")


DIGITS_DEMO = str(ROOT / "configs" / "digits-demo.toml")
TINY = ["--set", "model.z_dim=4", "--set", "model.filters=[8, 16]", "--epochs", "1"]  # a digits run in seconds


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-epoch digits run (z_dim 4, filters 8-16) named ``d``, trained once per test module."""
    from zspace.cli.main import main

    out = tmp_path_factory.mktemp("tiny-run")
    assert main(["-q", "train", DIGITS_DEMO, "--out-dir", str(out), "--name", "d", *TINY]) == 0
    return out / "d"


@pytest.fixture
def tiny_run_copy(tiny_run: Path, tmp_path: Path) -> Path:
    """A private copy of :func:`tiny_run` at ``tmp_path/runs/d``, for a test that edits or breaks it."""
    dst = tmp_path / "runs" / "d"
    shutil.copytree(tiny_run, dst)
    return dst


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep the decoded-image cache of the test session out of the user's ~/.cache."""
    os.environ["ZSPACE_CACHE_DIR"] = str(tmp_path_factory.mktemp("zspace-cache"))


@pytest.fixture(autouse=True)
def _no_thread_budget_between_tests():
    """``--threads`` in one in-process CLI test caps the whole process: lift it before the next test."""
    yield
    from zspace.io import limits

    limits.set_thread_budget(None)


def _chromium() -> tuple[str, str] | None:
    import shutil

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory):
    """Headless Chromium driven by Selenium (Debian's chromium + chromium-driver; nothing is downloaded)."""
    found = _chromium()
    if found is None:
        reason = "chromium and chromedriver are not installed (make test installs Debian's packages)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI is set, so the browser test must not skip")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--allow-file-access-from-files"):  # fmt: skip
        opts.add_argument(flag)
    opts.add_argument("--window-size=1280,2000")
    opts.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")  # a new, empty profile
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=found[1]), options=opts)
    driver.get("about:blank")  # the first navigation of a new profile is not a test's business
    yield driver
    driver.quit()


@contextlib.contextmanager
def _serve(folder: Path):
    """Serve ``folder`` on an ephemeral localhost port (pages are checked over HTTP, as a user's server would)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest's output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _serving_explorer(explorer):
    """Serve ``explorer`` (a :class:`zspace.explore.data.Explorer`) on a free loopback port in a thread; yield its
    URL; stop the server and close the socket afterwards."""
    import threading

    from zspace.explore.server import bind, make_server, url_of

    sock = bind("127.0.0.1", 0)
    server = make_server(explorer)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield url_of(sock)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def serving():
    """``with serving(explorer) as url:`` the explorer's app served in a background thread."""
    return _serving_explorer


def check_page_in_browser(driver, page: Path, timeout: float = 60.0) -> dict:
    """Open ``page``; wait for every image to settle; assert all loaded and the console shows no errors."""
    from selenium.webdriver.support.ui import WebDriverWait

    with _serve(page.parent) as base:
        driver.get(f"{base}/{page.name}")
        # the load event normally covers images; wait explicitly so a slow, loaded CI machine cannot race us
        WebDriverWait(driver, timeout).until(
            lambda d: d.execute_script("return Array.from(document.images).every(i => i.complete);")
        )
        facts = driver.execute_script(
            "const imgs = Array.from(document.images);"
            "return {n: imgs.length, broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src),"
            " title: document.title, sections: document.querySelectorAll('section').length};"
        )
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not facts["broken"], f"images that did not load: {facts['broken']}; console errors: {errors}"
    assert not errors, f"console errors: {errors}"
    return facts
