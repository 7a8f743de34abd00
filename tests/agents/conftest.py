"""Fixtures for the real coding agents: simulated providers and the gateway, started as real processes on 127.0.0.1:0.

The `nines` binary comes from NINES_BIN, or target/debug/nines (as in tests/sdk). Each agent has a route whose first
target speaks the agent's own dialect and is down (503 on every request), and whose second target speaks another
dialect, so a working run proves failover and translation on the agent's real traffic:

    agent        front door                      route          first (down)            second (serves)
    Claude Code  POST /v1/messages               claude-agent   first-anthropic         second-openai
    Codex CLI    POST /v1/responses              codex-agent    first-openai            second-anthropic
    Gemini CLI   POST /v1beta/models/…:stream…   gemini-agent   first-gemini            second-anthropic

The cut-answer tests (issue 14) use the same routes on a second gateway process (`resume_gateway`), so that their
first targets' health is not what the failover tests left behind.

Nothing here reaches beyond loopback: the agents are pointed at the gateway, the gateway at the simulators, and the
agents' own telemetry/update/side traffic is switched off by the settings in agents.py.
"""

import json
import os
import pathlib
import subprocess
import time
import urllib.parse
import urllib.request

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = os.environ.get("NINES_BIN", str(ROOT / "target" / "debug" / "nines"))

SIMS = {  # name -> provider kind
    "first-anthropic": "anthropic",
    "first-openai": "openai",
    "first-gemini": "gemini",
    "second-openai": "openai",
    "second-anthropic": "anthropic",
}
MODEL = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4.1", "gemini": "gemini-2.5-flash"}
# agent -> (route, first, second). The route name is the model the agent asks for; NINES_AGENT_ROUTE_<AGENT> renames
# it, e.g. to a model the agent knows (Codex sends other tools for "gpt-5.5" than for an unknown name: README.md).
ROUTES = {
    "claude": (os.environ.get("NINES_AGENT_ROUTE_CLAUDE", "claude-agent"), "first-anthropic", "second-openai"),
    "codex": (os.environ.get("NINES_AGENT_ROUTE_CODEX", "codex-agent"), "first-openai", "second-anthropic"),
    "gemini": (os.environ.get("NINES_AGENT_ROUTE_GEMINI", "gemini-agent"), "first-gemini", "second-anthropic"),
}


def _start(args, marker, log_path):
    """Start a process logging to a file, and wait for the line that says where it listens."""
    log = open(log_path, "w")
    proc = subprocess.Popen([BIN, *args], stdout=log, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "NINES_LOG": os.environ.get("NINES_LOG", "info")})
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for line in pathlib.Path(log_path).read_text().splitlines():
            if marker in line:
                return proc, line.strip().rsplit(" ", 1)[-1]
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{args[0]} did not start: {pathlib.Path(log_path).read_text()[-2000:]!r}")


class Sim:
    """A simulated provider process and its control endpoint."""

    def __init__(self, name, log_dir):
        self.name = name
        self.kind = SIMS[name]
        self.log = log_dir / f"sim-{name}.log"
        self.proc, self.url = _start(["sim", "--listen", "127.0.0.1:0", "--name", name], "listening on", self.log)

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            raw = resp.read()
            return json.loads(raw) if raw else None

    def down(self, status=503):
        self._call("POST", "/_sim/faults", {"kind": "status", "status": status, "count": 4294967295})

    def hits(self):
        return self._call("GET", "/_sim/hits")["total"]

    def fault(self, **fault):
        """Queue one fault (FIFO: each model request takes the front one), e.g. fault(kind="cut", after=5)."""
        self._call("POST", "/_sim/faults", fault)

    def pending_faults(self):
        return self._call("GET", "/_sim/faults")

    def hit_paths(self):
        """Model requests received so far, by path."""
        return self._call("GET", "/_sim/hits")["paths"]

    def last(self, path):
        """The JSON body of the last model request received on `path`."""
        return self._call("GET", "/_sim/last?path=" + urllib.parse.quote(path, safe=""))

    def post(self, path, body, headers):
        """A model request sent to the simulator directly (not through the gateway); its JSON answer."""
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", **headers})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def reset(self):
        self._call("POST", "/_sim/reset", {})


class Gateway:
    routes = ROUTES

    def __init__(self, url, log):
        self.url, self.log = url, log

    def log_tail(self, n=4000):
        return self.log.read_text(errors="replace")[-n:]

    def log_size(self):
        return self.log.stat().st_size

    def log_since(self, offset):
        """What the gateway logged after the log was `offset` bytes long."""
        return self.log.read_bytes()[offset:].decode(errors="replace")


@pytest.fixture(scope="session")
def logs(tmp_path_factory):
    return tmp_path_factory.mktemp("agent-logs")


@pytest.fixture(scope="session")
def sims(logs):
    started = {}
    try:
        for name in SIMS:
            started[name] = Sim(name, logs)
        yield started
    finally:
        for s in started.values():
            s.proc.terminate()
            s.proc.wait(timeout=10)


def directives_supported(sim):
    """Whether the simulator follows `[[sim:call NAME ARGS]]` directives (asked directly, Anthropic dialect).

    Without them the simulator's default tool policy calls the FIRST offered tool with arguments made from the
    prompt, which for an agent means running a real tool (Codex: a shell command) with text it was never meant to
    run. So the agents are only started against a simulator that passes this check.
    """
    schema = {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}
    body = {"model": "m", "max_tokens": 64,
            "tools": [{"name": "first_tool", "input_schema": schema}, {"name": "second_tool", "input_schema": schema}],
            "messages": [{"role": "user", "content": 'probe [[sim:call second_tool {"q": "directive"}]]'}]}
    req = urllib.request.Request(sim.url + "/v1/messages", data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "anthropic-version": "2023-06-01",
                                          "x-api-key": "probe"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            answer = json.loads(resp.read())
    except OSError:
        return False
    finally:
        sim.reset()
    calls = [b for b in answer.get("content", []) if b.get("type") == "tool_use"]
    return len(calls) == 1 and calls[0].get("name") == "second_tool" and calls[0].get("input") == {"q": "directive"}


@pytest.fixture(scope="session")
def scripted_sims(sims):
    """The simulators, once they are known to follow tool-call directives (else every agent test fails here)."""
    if not directives_supported(sims["second-anthropic"]):
        pytest.fail("the simulator does not follow [[sim:call NAME ARGS]] directives (binary: " + BIN + "); "
                    "agents are not run against its default tool policy", pytrace=False)
    return sims


def _serve(sims, logs, suffix=""):
    """Start a gateway with its own config and log (and so its own targets' health), routed as ROUTES says."""
    parts = []
    for name, kind in SIMS.items():
        base = sims[name].url + ("/v1" if kind == "openai" else "")
        parts.append(f'[providers.{name}]\nkind = "{kind}"\nbase_url = "{base}"\n'
                     f'timeouts = {{ first_byte = "30s", idle = "30s" }}\n\n')
    for route, first, second in ROUTES.values():
        parts.append(f'[routes."{route}"]\ntargets = ["{first}/{MODEL[SIMS[first]]}", '
                     f'"{second}/{MODEL[SIMS[second]]}"]\n\n')
    config = logs / f"nines{suffix}.toml"
    config.write_text("".join(parts))
    log = logs / f"gateway{suffix}.log"
    proc, url = _start(["serve", "--config", str(config), "--listen", "127.0.0.1:0"], "nines listening on", log)
    return proc, Gateway(url, log)


@pytest.fixture(scope="session")
def gateway(sims, logs):
    proc, gw = _serve(sims, logs)
    try:
        yield gw
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def resume_gateway(sims, logs):
    """A second gateway, same config, for the streams that are cut and resumed: its targets' health starts fresh.

    On `gateway`, the failover tests leave each first target with a run of 503s, so its breaker is open (or its
    traffic share still ramping up after a close) for a while afterwards, and requests would skip it.
    """
    proc, gw = _serve(sims, logs, "-resume")
    try:
        yield gw
    finally:
        proc.terminate()
        proc.wait(timeout=10)
