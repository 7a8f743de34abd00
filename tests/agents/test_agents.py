"""Real coding agents from npm (pinned in package.json) through nines, with the agent's own provider down.

Each agent gets a prompt asking it to read hello.txt (a unique token), carrying a simulator directive
`[[sim:call TOOL ARGS]]` for the agent's real read tool. The route's first target (the agent's own dialect) answers
503 to everything; the second (another dialect) answers with that tool call, the agent runs its tool for real, sends
the result back, and the second target answers `"{sim} says: tool said: {output}"`. So a pass proves: failover,
translation of the agent's real request (its full tool list, system prompt, streaming) into another dialect and back,
a tool call the agent understood and executed, and the tool result carried to the fallback target.

Runs only where tests/agents/node_modules exists (`npm ci` in tests/agents); otherwise the module is skipped.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import uuid

import pytest

sys.path.insert(0, os.path.dirname(__file__))
import agents  # noqa: E402

if (reason := agents.installed()) is not None:
    pytest.skip(reason, allow_module_level=True)

TIMEOUT = float(os.environ.get("NINES_AGENT_TIMEOUT", "120"))
STRACE = shutil.which("strace") if os.environ.get("NINES_AGENT_STRACE", "1") != "0" else None


def run(argv, env, cwd, strace_log=None):
    """Run one agent in its own process group, bounded by TIMEOUT; the whole group is killed on timeout."""
    if strace_log is not None:
        argv = [STRACE, "-f", "-qq", "-e", "trace=connect", "-e", "signal=none", "-o", str(strace_log), *argv]
    proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        return None, out, err
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # anything the agent left behind (MCP servers, shells, ...)
        except ProcessLookupError:
            pass
    return proc.returncode, out, err


LOOPBACK = re.compile(r'inet_addr\("127\.|inet_pton\(AF_INET6, "::1"|inet_pton\(AF_INET6, "::ffff:127\.')


def outside_loopback(strace_log):
    """connect() calls to any address other than loopback (DNS lookups show up as connects to the resolver)."""
    bad = []
    for line in strace_log.read_text(errors="replace").splitlines():
        if "connect(" in line and ("AF_INET" in line) and not LOOPBACK.search(line):
            bad.append(line.strip())
    return bad


@pytest.fixture
def workspace(tmp_path):
    (tmp_path / "home").mkdir()
    (tmp_path / "work").mkdir()
    token = f"nines-{uuid.uuid4().hex}"
    (tmp_path / "work" / "hello.txt").write_text(token + "\n")
    return tmp_path, token


@pytest.mark.parametrize("agent", agents.AGENTS)
def test_agent_reads_a_file_through_failover(agent, scripted_sims, gateway, workspace):
    sims = scripted_sims
    tmp, token = workspace
    home, work = tmp / "home", tmp / "work"
    route, first, second = gateway.routes[agent]
    for s in sims.values():
        s.reset()
    sims[first].down()

    prompt = ("Read the file hello.txt in the current directory and tell me what it says. "
              + agents.read_directive(agent, work))
    argv, env = agents.command(agent, home, work, gateway.url, route, prompt)
    strace_log = tmp / "strace.log" if STRACE else None
    code, out, err = run(argv, env, work, strace_log)

    context = (f"\n--- {agent} exit {code}\n--- stdout:\n{out[-3000:]}\n--- stderr:\n{err[-3000:]}"
               f"\n--- hits: {{{', '.join(f'{n}: {s.hits()}' for n, s in sims.items())}}}"
               f"\n--- gateway log:\n{gateway.log_tail()}")
    assert code is not None, f"{agent} did not finish within {TIMEOUT:.0f} s" + context
    assert code == 0, context
    assert re.search(rf"{re.escape(second)} says: tool said:", out), context
    assert token in out, context
    assert sims[first].hits() >= 1, "the down first target was never tried" + context
    assert sims[second].hits() >= 2, "the second target did not serve both the tool call and the answer" + context
    if strace_log is not None:
        bad = outside_loopback(strace_log)
        assert not bad, f"{agent} tried to leave loopback:\n" + "\n".join(bad[:20]) + context
