"""Shared fixtures: simulated providers and the gateway, started as real processes on 127.0.0.1:0.

The `nines` binary comes from NINES_BIN, or target/debug/nines (built by the README's test command). Nothing here
reaches beyond loopback: the SDKs are pointed at the gateway, the gateway at the simulators.
"""

import json
import os
import pathlib
import subprocess
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("NINES_BIN", str(ROOT / "target" / "debug" / "nines"))


def _start(args, marker):
    """Start a process and wait for the line that says where it listens."""
    proc = subprocess.Popen(
        [BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        env={**os.environ, "NINES_LOG": "warn"},
    )
    line = proc.stdout.readline()
    if marker not in line:
        proc.kill()
        raise RuntimeError(f"{args[0]} did not start: {line!r}")
    return proc, line.strip().rsplit(" ", 1)[-1]


class Sim:
    """A simulated provider process and its control endpoint."""

    def __init__(self, name):
        self.name = name
        self.proc, self.url = _start(["sim", "--listen", "127.0.0.1:0", "--name", name], "listening on")

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def base_for(self, kind):
        """The `base_url` a provider of `kind` names this simulator by (OpenAI kinds include `/v1`)."""
        return self.url + ("/v1" if kind.startswith("openai") else "")

    def fault(self, count=1, **kind):
        self._call("POST", "/_sim/faults", {**kind, "count": count})

    def down(self, status=503):
        self.fault(count=4294967295, kind="status", status=status)

    def hits(self):
        return self._call("GET", "/_sim/hits")["total"]

    def reset(self):
        self._call("POST", "/_sim/reset", {})


# Each SDK talks to a route whose first target speaks the SDK's own dialect and fails, and whose second speaks
# the other dialect (so a failover is also a translation). A third route ends on a Gemini target.
SIMS = ["first-openai", "second-anthropic", "first-anthropic", "second-openai", "gemini", "responses"]


@pytest.fixture(scope="session")
def sims():
    started = {name: Sim(name) for name in SIMS}
    yield started
    for s in started.values():
        s.proc.terminate()
        s.proc.wait(timeout=10)


@pytest.fixture
def gateway(sims, tmp_path_factory):
    """A fresh gateway for every test: what one test's faults teach it (open breakers, cooldowns) must not decide
    where the next test's requests go. `retries = 0`: these tests pin failover; test_health.py pins retries."""
    def provider(name, kind):
        return (f'[providers.{name}]\nkind = "{kind}"\nbase_url = "{sims[name].base_for(kind)}"\nretries = 0\n'
                f'timeouts = {{ first_byte = "1s", idle = "1s" }}\n\n')

    toml = "".join([
        provider("first-openai", "openai"),
        provider("second-anthropic", "anthropic"),
        provider("first-anthropic", "anthropic"),
        provider("second-openai", "openai"),
        provider("gemini", "gemini"),
        provider("responses", "openai-responses"),
        '[routes."gpt-route"]\ntargets = ["first-openai/gpt-4.1", "second-anthropic/claude-sonnet-4-5"]\n',
        '[routes."claude-route"]\ntargets = ["first-anthropic/claude-sonnet-4-5", "second-openai/gpt-4.1"]\n',
        '[routes."gemini-route"]\ntargets = ["first-openai/gpt-4.1", "gemini/gemini-2.5-flash"]\n',
        '[routes."responses-route"]\ntargets = ["first-anthropic/claude-sonnet-4-5", "responses/gpt-5"]\n',
    ])
    path = tmp_path_factory.mktemp("nines") / "nines.toml"
    path.write_text(toml)
    proc, url = _start(["serve", "--config", str(path), "--listen", "127.0.0.1:0"], "nines listening on")
    yield url
    proc.terminate()
    proc.wait(timeout=10)


@pytest.fixture
def serve(tmp_path):
    """Start gateways from TOML text (`serve(toml)` returns the base URL); every one is stopped after the test."""
    procs = []

    def go(toml):
        path = tmp_path / f"nines-{len(procs)}.toml"
        path.write_text(toml)
        proc, url = _start(["serve", "--config", str(path), "--listen", "127.0.0.1:0"], "nines listening on")
        procs.append(proc)
        return url

    yield go
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


@pytest.fixture(autouse=True)
def clean_sims(sims):
    for s in sims.values():
        s.reset()
    yield


# Faults on the first target that must never reach the client. `kind` and its fields go to /_sim/faults.
FAULTS = {
    "529": {"kind": "status", "status": 529},
    "503": {"kind": "status", "status": 503},
    "500": {"kind": "status", "status": 500},
    "429-retry-after": {"kind": "status", "status": 429, "retry_after": 1},
    "hang": {"kind": "hang"},
    "reset": {"kind": "reset"},
    "cut-before-first-token": {"kind": "cut", "after": 1},
}
