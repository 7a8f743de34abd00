"""Ask your documents (the app at /app/) in a real browser: Debian's headless Chromium driven by playwright-core
(tests/browser/ask_app.mjs) against a real gateway serving the app, with the local MiniLM embeddings, PDF.js from npm
(scripts/fetch-pdfjs) and, as the chat route's last target, a real llama.cpp runtime (node-llama-cpp, tests/local)
loading a tiny random GGUF made here with the `gguf` package and run by the gateway itself (`command`).

The PDFs are made at test time with reportlab from the labelled corpus (crates/ask/tests/fixtures/corpus.json):
known facts on known pages. Four scenarios, each in its own notebook: all providers healthy; the first provider
down (failed over); a stream cut mid-answer (resumed); every cloud provider down (the local model answers, and the
page says so; its random weights answer nonsense, so no citation is asked of it). In the first three the answer must
cite the page that says it, and the viewer must show that page with the passage highlighted. Screenshots are kept:
target/artifacts/ask-app-*.png.

Skipped when something it needs is missing, unless NINES_REQUIRE_BROWSER is set (CI), where it fails instead.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BROWSER = ROOT / "tests" / "browser"
LOCAL = ROOT / "tests" / "local"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = ROOT / "target" / "artifacts"
MINILM = ROOT / ".cache" / "models" / "all-minilm-l6-v2"
PDFJS = ROOT / ".cache" / "pdfjs" / "node_modules" / "pdfjs-dist"
CORPUS = json.loads((ROOT / "crates" / "ask" / "tests" / "fixtures" / "corpus.json").read_text())


def _missing():
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    if shutil.which("node") is None:
        missing.append("node")
    if shutil.which("pdftotext") is None:
        missing.append("pdftotext (apt-get install poppler-utils)")
    if not (BROWSER / "node_modules" / "playwright-core").is_dir():
        missing.append("tests/browser/node_modules (npm ci --prefix tests/browser)")
    if not (LOCAL / "node_modules" / "node-llama-cpp").is_dir():
        missing.append("tests/local/node_modules (npm ci --prefix tests/local --omit=optional)")
    if not (MINILM / "model.safetensors").is_file():
        missing.append("the local embedding model (scripts/fetch-models)")
    if not (PDFJS / "build" / "pdf.min.mjs").is_file():
        missing.append("PDF.js (scripts/fetch-pdfjs)")
    try:
        import gguf  # noqa: F401
        import reportlab  # noqa: F401
    except ImportError as e:
        missing.append(f"the Python package {e.name} (tests/local/requirements.txt, tests/sdk/requirements.txt)")
    return missing


@pytest.fixture
def ready():
    missing = _missing()
    if missing:
        why = "the app's browser test needs " + ", ".join(missing)
        if os.environ.get("NINES_REQUIRE_BROWSER"):
            pytest.fail(why + " (NINES_REQUIRE_BROWSER is set)")
        pytest.skip(why)


def make_pdf(path, pages):
    """The corpus document's pages as a PDF, one PDF page each (headings set as headings)."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer
    from xml.sax.saxutils import escape

    styles = getSampleStyleSheet()
    story = []
    for i, lines in enumerate(pages):
        if i:
            story.append(PageBreak())
        for line in lines:
            if not line.strip():
                story.append(Spacer(1, 6))
            elif line.startswith("## "):
                story.append(Paragraph(escape(line[3:]), styles["Heading2"]))
            elif line.startswith("# "):
                story.append(Paragraph(escape(line[2:]), styles["Heading1"]))
            else:
                story.append(Paragraph(escape(line), styles["BodyText"]))
    SimpleDocTemplate(str(path), pagesize=A4).build(story)


def question(document, page):
    return next(q for q in CORPUS["questions"] if q["document"] == document and q["page"] == page)


def test_the_app_answers_with_citations_through_failures_down_to_the_local_model(ready, sims, serve, tmp_path):
    gguf_path = tmp_path / "tiny.gguf"
    subprocess.run([sys.executable, str(LOCAL / "make_tiny_gguf.py"), str(gguf_path)], check=True,
                   capture_output=True, timeout=120)
    doc = CORPUS["documents"][0]
    pdf = tmp_path / doc["name"]
    make_pdf(pdf, doc["pages"])

    first, second = "first-openai", "second-anthropic"
    server = LOCAL / "openai-server.mjs"
    toml = f"""
[providers.{first}]
kind = "openai"
base_url = "{sims[first].base_for("openai")}"
retries = 0
timeouts = {{ first_byte = "2s", idle = "2s" }}

[providers.{second}]
kind = "anthropic"
base_url = "{sims[second].base_for("anthropic")}"
retries = 0
timeouts = {{ first_byte = "2s", idle = "2s" }}

[providers.local]
kind = "openai"
base_url = "http://127.0.0.1:{{port}}/v1"
command = ["node", "{server}", "{gguf_path}", "{{port}}"]
timeouts = {{ first_byte = "60s", idle = "30s" }}

[providers.minilm]
kind = "local-embeddings"
model_dir = "{MINILM}"

[routes.ask]
targets = ["{first}/gpt-4.1", "{second}/claude-sonnet-4-5", "local/tiny-random-llama"]

[routes.embed]
targets = ["minilm/all-minilm-l6-v2"]

[app]
enabled = true
pdfjs_dir = "{PDFJS}"
local_providers = ["local"]
"""
    url = serve(toml)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for shot in ARTIFACTS.glob("ask-app-*.png"):
        shot.unlink()

    def scenario(name, q, *flags):
        args = ["node", str(BROWSER / "ask_app.mjs"), "--url", url + "/app/", "--key", "reader",
                "--pdf", str(pdf), "--notebook", name, "--ask", q["q"], "--shots", str(ARTIFACTS / f"ask-app-{name}"),
                *flags]
        if "--no-cite" not in flags:
            args += ["--page", str(q["page"]), "--quote", q["quote"]]
        done = subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=BROWSER,
                              env={**os.environ, "CHROMIUM": CHROMIUM})
        assert done.returncode == 0, f"{name}: the browser test failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"

    returns = question(doc["name"], 5)
    parts = question(doc["name"], 7)

    scenario("healthy", returns, "--no-badge", "failover", "--no-badge", "resumed", "--no-badge", "local")

    sims[first].fault(count=1, kind="status", status=503)
    scenario("failover", parts, "--expect-badge", "failover", "--no-badge", "local")

    sims[first].fault(count=1, kind="cut", after=4)
    scenario("resumed", returns, "--expect-badge", "resumed", "--no-badge", "local")

    sims[first].down(503)
    sims[second].down(529)
    scenario("local", returns, "--no-cite", "--expect-badge", "local")

    for name in ("healthy", "failover", "resumed"):
        assert (ARTIFACTS / f"ask-app-{name}-viewer.png").stat().st_size > 10_000
    assert (ARTIFACTS / "ask-app-local-answer.png").stat().st_size > 10_000
