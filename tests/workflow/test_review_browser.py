"""``ethoflow review`` in a real headless browser (Debian's chromium driven by selenium) on the
finished demo run: the page loads, a bout plays, a keyboard relabel is saved to the reviewed
file and survives a reload, and a request without the token is refused.

Skips, saying why, where chromium, chromedriver or selenium is not installed (``.ci/run``
installs them where it runs as root with apt-get). ``ETHOFLOW_REVIEW_SCREENSHOT=path`` saves
a screenshot of the page there (the README's ``workflow/docs/review.png``)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest

from ethoflow import results
from ethoflow.review.app import create_app
from ethoflow.review.store import open_run

# the session-scoped demo run is shared by the files of this group: one worker runs them
pytestmark = [pytest.mark.workflow, pytest.mark.xdist_group("demo")]

KEY = "openfield1/part1"
TOKEN = "browser-test-token"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def _missing() -> str:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    if not CHROMIUM or not DRIVER:
        return (
            "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
        )
    return ""


@pytest.fixture
def server(demo_run, tmp_path):
    """The review app over a copy of the finished demo run, on a free local port."""
    import uvicorn

    run = tmp_path / "run"
    shutil.copytree(demo_run, run, symlinks=True)
    store = open_run("config/config.yaml", workdir=run, reviewer="browser-test")
    store.build_index()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(store, TOKEN, port=port, index_in_background=False)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", run
    srv.should_exit = True
    thread.join(10)


@pytest.fixture
def browser():
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1200,860",
        "--autoplay-policy=no-user-gesture-required",
    ):
        opts.add_argument(arg)
    try:
        driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    except Exception as err:  # noqa: BLE001 - a broken browser install: say so and skip
        pytest.skip(f"chromium would not start under selenium: {err}")
    yield driver
    driver.quit()


def wait(driver, script: str, timeout: float = 30.0, what: str = ""):
    """Poll a JS expression until it is truthy; its value."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(f"return ({script});")
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or script}")


def test_review_page_in_a_real_browser(server, browser):
    base, run = server
    # no token: refused, by the server and so in the browser
    for url in ("/", "/api/sessions", f"/video/{KEY}", "/static/app.js"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(base + url, timeout=10)
        assert err.value.code == 403, url
    browser.get(base + "/")
    assert "403" in browser.find_element("tag name", "body").text

    browser.get(f"{base}/?token={TOKEN}#{KEY}")
    wait(browser, "S.d && S.d.key === 'openfield1/part1' && S.cur === 0", what="the session")
    assert "token" not in browser.current_url  # taken out of the address bar; a cookie now
    wait(browser, "document.getElementById('video').readyState >= 1", what="video metadata")
    first = browser.execute_script("return S.bouts[0];")
    assert first["behavior"] == "locomotion" and first["status"] == "predicted"
    assert "locomotion" in browser.find_element("id", "bout").text
    queue = browser.find_elements("css selector", "#queue li")
    assert queue and "margin" in queue[0].text
    assert browser.find_element("id", "progress").text.endswith("bouts reviewed")

    # play the bout: the video moves from its start and has frames to show
    body = browser.find_element("tag name", "body")
    body.send_keys("p")
    t0 = first["start"] / 30.0
    wait(browser, f"document.getElementById('video').currentTime > {t0 + 0.3}", what="playback")
    state = browser.execute_script(
        "const v = document.getElementById('video'); return [v.readyState, v.paused, v.error];"
    )
    assert state[0] >= 2 and state[2] is None, state

    # relabel it with the keyboard: key 2 = immobile (0 other, 1 locomotion)
    body.send_keys(" ")  # pause
    body.send_keys("2")
    review = run / f"results/review/{KEY}.csv"
    wait(browser, "S.bouts[0].status === 'relabeled'", what="the save")
    df = results.read_review(review)
    got = df.iloc[0][["behavior", "start_frame", "stop_frame", "status", "reviewer"]].tolist()
    assert got == ["immobile", first["start"], first["stop"], "relabeled", "browser-test"]
    assert df["reviewed_at"].iloc[0].endswith("Z")
    assert (df["status"].iloc[1:] == "predicted").all()  # the others are not touched
    assert "1 / " in browser.find_element("id", "progress").text

    # reload: the label is kept (the cookie carries the token now)
    browser.refresh()
    wait(browser, "S.d && S.d.key === 'openfield1/part1' && S.cur === 0", what="the reload")
    kept = browser.execute_script("return S.bouts[0];")
    assert (kept["behavior"], kept["status"]) == ("immobile", "relabeled")
    text = browser.find_element("id", "bout").text
    assert "immobile" in text and "relabeled" in text

    shot = os.environ.get("ETHOFLOW_REVIEW_SCREENSHOT")
    if shot:
        browser.save_screenshot(shot)
    png = browser.get_screenshot_as_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
