"""A real llama.cpp runtime behind nines' `openai` provider kind, run by nines itself (`[providers.X] command`).

nines starts `node openai-server.mjs tiny.gguf {port}` (llama.cpp through node-llama-cpp's bindings, CPU only, pinned
in package-lock.json) on a loopback port it chose, and the official OpenAI SDK talks to nines. The model is a tiny
random-weight GGUF written at test time by make_tiny_gguf.py: its answers are gibberish, but real llama.cpp
tokenization, chat templating, sampling and streaming make them.

Checked: an answer with finish_reason and usage; a stream with a usage chunk; a client that leaves mid-stream
stops the generation; the server's own 400 relayed in OpenAI's error shape (and nines' own 400 for what it refuses
first), nines answering normally after; the server killed -9 and started again by nines, answering from a new
process; the server gone once nines stops (SIGTERM).

Skipped when node, tests/local/node_modules (npm ci) or the gguf Python package is missing, unless
NINES_REQUIRE_LOCAL_MODEL=1, which makes that a failure. See tests/local/README.md.
"""

import importlib.util
import os
import pathlib
import select
import shutil
import signal
import subprocess
import sys
import time

import openai
import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
BIN = os.environ.get("NINES_BIN", str(ROOT / "target" / "debug" / "nines"))
SERVER = HERE / "openai-server.mjs"
ROUTE, TARGET = "local", "local/tiny-random-llama"


def _missing():
    missing = []
    if shutil.which("node") is None:
        missing.append("node")
    if not (HERE / "node_modules" / "node-llama-cpp").is_dir():
        missing.append("tests/local/node_modules (npm ci --prefix tests/local --omit=optional --no-audit --no-fund)")
    if importlib.util.find_spec("gguf") is None:
        missing.append("the gguf Python package (pip install -r tests/local/requirements.txt)")
    return missing


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory):
    missing = _missing()
    if missing:
        why = "the local model test needs " + ", ".join(missing)
        if os.environ.get("NINES_REQUIRE_LOCAL_MODEL") == "1":
            pytest.fail(why + " (NINES_REQUIRE_LOCAL_MODEL=1)")
        pytest.skip(why)
    out = tmp_path_factory.mktemp("model") / "tiny.gguf"
    subprocess.run([sys.executable, str(HERE / "make_tiny_gguf.py"), str(out)], check=True, timeout=60,
                   stdout=subprocess.DEVNULL)
    return out


class Gateway:
    """nines serving a route to the local server it runs; its log (the server's lines included) in `log`."""

    def __init__(self, directory, gguf):
        config = directory / "nines.toml"
        config.write_text(
            f'[providers.local]\nkind = "openai"\nbase_url = "http://127.0.0.1:{{port}}/v1"\n'
            f'command = ["node", "{SERVER}", "{gguf}", "{{port}}"]\n\n'
            f'[routes.{ROUTE}]\ntargets = ["{TARGET}"]\n')
        self.log = directory / "nines.log"
        self._log = self.log.open("w")
        self.proc = subprocess.Popen(
            [BIN, "serve", "--config", str(config), "--listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=self._log, text=True,
            env={**os.environ, "NINES_LOG": "info", "LLAMA_THREADS": "1"},
        )
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        if "nines listening on" not in line:
            self.stop()
            raise RuntimeError(f"nines did not start: {line!r}\n{self.tail()}")
        self.url = line.strip().rsplit(" ", 1)[-1]
        self.client = openai.OpenAI(base_url=self.url + "/v1", api_key="unused", max_retries=0, timeout=30)

    def tail(self, lines=40):
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def chat(self, content="hello world", **kw):
        return self.client.chat.completions.with_raw_response.create(
            model=ROUTE, messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": content}],
            max_tokens=8, **kw)

    def answered(self, limit):
        """Ask until the route answers 200 (the local server may still be starting), within `limit` seconds."""
        deadline = time.monotonic() + limit
        while True:
            try:
                raw = self.chat()
                if raw.http_response.status_code == 200:
                    return raw
            except openai.APIError:
                pass
            assert time.monotonic() < deadline, f"no answer within {limit} s\n{self.tail()}"
            time.sleep(0.2)

    def servers(self):
        """The pids of nines' children running openai-server.mjs."""
        found = []
        for entry in pathlib.Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            # Field 4, after the parenthesised name (which may hold spaces), is the parent's pid.
            fields = stat.rsplit(") ", 1)[-1].split()
            if fields[0] != "Z" and int(fields[1]) == self.proc.pid and SERVER.name.encode() in cmdline:
                found.append(int(entry.name))
        return found

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self._log.close()


@pytest.fixture(scope="session")
def gateway(tiny_gguf, tmp_path_factory):
    gw = Gateway(tmp_path_factory.mktemp("nines"), tiny_gguf)
    try:
        gw.answered(60)  # the first start: node loads the model
        yield gw
    finally:
        gw.stop()


def test_an_answer_from_llama_cpp_through_nines(gateway):
    raw = gateway.chat()
    assert raw.http_response.status_code == 200
    assert raw.http_response.headers.get("x-nines-target") == TARGET
    r = raw.parse()
    choice = r.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content.strip(), r
    assert choice.finish_reason == "length", "the random model never ends on its own: max_tokens ends it"
    assert r.usage.prompt_tokens > 0
    assert 0 < r.usage.completion_tokens <= 8
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


def test_a_stream_from_llama_cpp_through_nines(gateway):
    whole = gateway.chat("stream me").parse().choices[0].message.content
    chunks = list(gateway.client.chat.completions.create(
        model=ROUTE, messages=[{"role": "system", "content": "be brief"}, {"role": "user", "content": "stream me"}],
        max_tokens=8, stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) >= 3, chunks
    assert "".join(pieces) == whole, "greedy decoding: the same text streamed and not"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["length"], chunks
    usage = [c.usage for c in chunks if c.usage]
    assert len(usage) == 1, chunks
    assert chunks[-1].usage == usage[0] and chunks[-1].choices == [], "the usage chunk comes last, without choices"
    assert usage[0].prompt_tokens > 0 and 0 < usage[0].completion_tokens <= 8

    plain = list(gateway.client.chat.completions.create(
        model=ROUTE, messages=[{"role": "user", "content": "stream me"}], max_tokens=4, stream=True))
    assert not any(c.usage for c in plain), "no usage chunk unless asked for"
    assert sum(1 for c in plain if c.choices and c.choices[0].finish_reason) == 1


def test_a_client_that_leaves_stops_the_generation(gateway):
    # 100000 tokens would keep the one-sequence server busy for minutes (it serves requests one at a time).
    stream = gateway.client.chat.completions.create(
        model=ROUTE, messages=[{"role": "user", "content": "go on forever"}], max_tokens=100000, stream=True)
    for n, _ in enumerate(stream):
        if n == 10:
            break
    stream.close()
    # The next request is answered at once: nines dropped its upstream request and the server stopped generating.
    r = gateway.client.with_options(timeout=10).chat.completions.create(
        model=ROUTE, messages=[{"role": "user", "content": "after"}], max_tokens=4)
    assert r.choices[0].finish_reason == "length"
    # The server's own line (forwarded by nines under nines::local) says it stopped early.
    deadline = time.monotonic() + 5
    while "client-gone" not in gateway.log.read_text():
        assert time.monotonic() < deadline, gateway.tail()
        time.sleep(0.2)
    line = next(l for l in gateway.log.read_text().splitlines() if "client-gone" in l)
    assert 'finish="abort"' in line, line
    assert int(line.split("completion_tokens=")[1].split()[0]) < 5000, line


def _refused(gateway, content):
    with pytest.raises(openai.BadRequestError) as refused:
        gateway.client.chat.completions.create(model=ROUTE, messages=[{"role": "user", "content": content}],
                                               max_tokens=8)
    e = refused.value
    assert e.status_code == 400
    body = e.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["type"] == "invalid_request_error", body
    return body["error"]


def test_refusals_come_back_in_openai_shape_and_nines_stays_healthy(gateway):
    # nines passes this on (it checks nothing about length); the local server refuses it: 6000 words are about 6000
    # tokens of the tiny vocabulary, its context is 4096. The message is the server's own.
    for _ in range(4):  # more than the breaker's 3 consecutive failures: a client's 400 must never count as one
        err = _refused(gateway, "the " * 6000)
        assert err["code"] == "context_length_exceeded", err
        assert "this model's context is 4096" in err["message"], err
    # A number for content: nines refuses it itself, before any provider sees it.
    err = _refused(gateway, 5)
    assert "messages[0].content" in err["message"], err

    raw = gateway.chat()
    assert raw.http_response.status_code == 200
    assert raw.parse().choices[0].message.content.strip()


def _alive(pid):
    try:
        state = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_nines_restarts_its_local_server_and_stops_it_with_itself(tiny_gguf, tmp_path):
    gw = Gateway(tmp_path, tiny_gguf)
    try:
        gw.answered(60)
        first = gw.servers()
        assert len(first) == 1, f"{first}\n{gw.tail()}"

        os.kill(first[0], signal.SIGKILL)
        started = time.monotonic()
        gw.answered(20)
        again = time.monotonic() - started
        second = gw.servers()
        assert len(second) == 1 and second != first, f"{first} -> {second}\n{gw.tail()}"
        assert not _alive(first[0])
        assert "nines::local" in gw.log.read_text(), "the server's lifecycle is logged under nines::local"
        print(f"answered again {again:.2f} s after kill -9 (pid {first[0]} -> {second[0]})")
    finally:
        gw.stop()
    assert gw.proc.returncode is not None
    deadline = time.monotonic() + 5
    while _alive(second[0]):
        assert time.monotonic() < deadline, f"the local server (pid {second[0]}) outlived nines\n{gw.tail()}"
        time.sleep(0.2)
