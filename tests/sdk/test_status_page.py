"""The status page in a real browser during an outage: Debian's headless Chromium, driven by playwright-core
(tests/browser, pinned in its package-lock.json), loads /status from a real gateway whose first provider answers
529 to everything, and checks on a phone and on a desktop that the provider shows its breaker open, that the open
incident names the target with `overload` and 529, that the saved-request count is what the client saw, that the
phone never scrolls sideways, that nothing breaks the content-security policy or logs an error, and that the page
refreshes itself with new data (tests/browser/status_page.mjs). The screenshots are kept as test artifacts:
target/artifacts/status-page-phone.png and status-page-desktop.png.

Skipped when Chromium or the browser test's node_modules are missing, unless NINES_REQUIRE_BROWSER is set (CI sets
it, so there it fails instead).
"""

import json
import os
import pathlib
import shutil
import subprocess
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BROWSER = ROOT / "tests" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "target" / "artifacts"
FIRST, SECOND = "first-anthropic", "second-openai"
TARGET = f"{FIRST}/claude-sonnet-4-5"


def _missing():
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if shutil.which("node") is None:
        missing.append("node")
    if not (BROWSER / "node_modules" / "playwright-core").is_dir():
        missing.append("tests/browser/node_modules (npm ci --prefix tests/browser)")
    return missing


@pytest.fixture
def browser_ready():
    missing = _missing()
    if missing:
        why = "the browser test needs " + ", ".join(missing)
        if os.environ.get("NINES_REQUIRE_BROWSER"):
            pytest.fail(why + " (NINES_REQUIRE_BROWSER is set)")
        pytest.skip(why)


def chat(url):
    body = json.dumps({"model": "r", "messages": [{"role": "user", "content": "hello status"}]}).encode()
    req = urllib.request.Request(url + "/v1/chat/completions", data=body, method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["x-nines-target"] == f"{SECOND}/gpt-4.1"


def status_json(url):
    with urllib.request.urlopen(url + "/status.json", timeout=10) as resp:
        return json.load(resp)


def test_the_status_page_in_a_real_browser_during_an_outage(browser_ready, sims, serve):
    def provider(name, kind):
        return (f'[providers.{name}]\nkind = "{kind}"\nbase_url = "{sims[name].base_for(kind)}"\nretries = 0\n'
                f'timeouts = {{ first_byte = "1s" }}\n\n')

    # A long cooldown: the breaker stays open while the browser looks.
    url = serve(provider(FIRST, "anthropic") + provider(SECOND, "openai")
                + f'[routes.r]\ntargets = ["{TARGET}", "{SECOND}/gpt-4.1"]\n\n'
                + '[health]\ncooldown = "10m"\ncooldown_max = "10m"\nramp = "0s"\n\n[status]\npublic = true\n')
    sims[FIRST].down(529)
    for _ in range(10):
        chat(url)
    assert sims[FIRST].hits() == 3, "three failures open the breaker; the other seven skip it"
    report = status_json(url)
    assert report["gateway"]["saved_24h"] == 10, report["gateway"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in ARTIFACTS.glob("status-page-*.png"):
        shot.unlink()
    node = subprocess.Popen(
        ["node", str(BROWSER / "status_page.mjs"), "--url", url + "/status", "--provider", FIRST,
         "--target", TARGET, "--kind", "overload", "--status", "529", "--saved", "10",
         "--shots", str(ARTIFACTS / "status-page"), "--handshake"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=BROWSER,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    try:
        first = node.stdout.readline()
        if first.strip() == "loaded":
            # Two more requests while the page is open: its own refresh must bring them.
            chat(url)
            chat(url)
            node.stdin.write("12\n")
            node.stdin.flush()
        out, err = node.communicate(timeout=40)
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    assert node.returncode == 0, f"the browser test failed (exit {node.returncode}):\n{first}{out}\n{err}"
    for name in ("phone", "desktop"):
        assert (ARTIFACTS / f"status-page-{name}.png").stat().st_size > 10_000
