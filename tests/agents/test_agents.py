"""Real coding agents from npm (pinned in package.json) through nines: with the agent's own provider down, and with
the agent's own provider cutting the final answer after its first words.

Each agent gets a prompt asking it to read hello.txt (a unique token), carrying a simulator directive
`[[sim:call TOOL ARGS]]` for the agent's real read tool. The route's first target (the agent's own dialect) answers
503 to everything; the second (another dialect) answers with that tool call, the agent runs its tool for real, sends
the result back, and the second target answers `"{sim} says: tool said: {output}"`. So a pass proves: failover,
translation of the agent's real request (its full tool list, system prompt, streaming) into another dialect and back,
a tool call the agent understood and executed, and the tool result carried to the fallback target.

The second scenario (issue 14, docs/streams.md): the first target serves the tool call, then cuts the final answer
after its first words; nines continues it on the second target within the same client stream, and the agent must
finish with the whole answer and no error.

Runs only where tests/agents/node_modules exists (`npm ci` in tests/agents); otherwise the module is skipped.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
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


# Issue 14: the first target (the agent's own dialect) serves the tool call, then cuts the final text answer after
# its first words; nines resumes the answer on the second target and splices the continuation into the same client
# stream (docs/streams.md). Where the final answer's words start in the first target's own stream, in the events the
# simulator's `cut` fault counts (crates/sim/src/faults.rs):
WORDS_START = {
    # Anthropic: message_start, content_block_start (thinking: Claude Code asks for adaptive thinking), ping,
    # signature_delta, content_block_stop, content_block_start (text); then one text_delta per word.
    "claude": 6,
    # OpenAI Chat (Codex's Responses request reaches the openai target as Chat): the role chunk; then one chunk a word.
    "codex": 1,
    # Gemini (alt=sse): the thought chunk (Gemini CLI asks for thoughts); then one chunk per word.
    "gemini": 1,
}
# The words the first target delivers before the cut: "{first} says: tool said:". The tool's output and everything
# after it reach the agent only through the continuation.
DELIVERED_WORDS = 4
INSTRUCTION = "Your previous reply was cut off."  # how an instruction-form continuation starts (docs/streams.md)


def text_of(content):
    """The text of a message's content: a string, or its text parts or blocks (thoughts left out)."""
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if p.get("type", "text") == "text" and not p.get("thought"))


def answer_of(sim, path, body):
    """The text `sim` answers to `body`, a streamed request it received on `path`, asked again directly and whole."""
    body = dict(body)
    if sim.kind == "anthropic":
        body["stream"] = False
        answer = sim.post(path, body, {"anthropic-version": "2023-06-01", "x-api-key": agents.KEY})
        return "".join(b["text"] for b in answer["content"] if b["type"] == "text")
    if sim.kind == "openai":
        body["stream"] = False
        body.pop("stream_options", None)
        answer = sim.post(path, body, {"authorization": f"Bearer {agents.KEY}"})
        return answer["choices"][0]["message"]["content"]
    assert path.endswith(":streamGenerateContent"), path
    answer = sim.post(path.replace(":streamGenerateContent", ":generateContent"), body,
                      {"x-goog-api-key": agents.KEY})
    return text_of(answer["candidates"][0]["content"]["parts"])


@pytest.mark.parametrize("agent", agents.AGENTS)
def test_agent_finishes_when_its_first_target_cuts_the_answer(agent, scripted_sims, resume_gateway, workspace):
    sims, gateway = scripted_sims, resume_gateway
    tmp, token = workspace
    home, work = tmp / "home", tmp / "work"
    route, first, second = gateway.routes[agent]
    for s in sims.values():
        s.reset()
    # One fault per model request on the first target, in order: the tool-call turn passes (a delay of 0 ms changes
    # nothing), then the final answer is cut after its first DELIVERED_WORDS words. Each agent sends one request per
    # model turn and nothing else (README.md); the hit counts below check it.
    sims[first].fault(kind="delay", ms=0)
    sims[first].fault(kind="cut", after=WORDS_START[agent] + DELIVERED_WORDS)
    log_start = gateway.log_size()

    prompt = ("Read the file hello.txt in the current directory and tell me what it says. "
              + agents.read_directive(agent, work))
    argv, env = agents.command(agent, home, work, gateway.url, route, prompt)
    strace_log = tmp / "strace.log" if STRACE else None
    started = time.monotonic()
    code, out, err = run(argv, env, work, strace_log)
    elapsed = time.monotonic() - started

    deadline = time.monotonic() + 10  # a request's completion is logged once its last byte went out
    while gateway.log_since(log_start).count("request completed") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    log = gateway.log_since(log_start)
    context = (f"\n--- {agent} exit {code} after {elapsed:.1f} s"
               f"\n--- stdout:\n{out[-3000:]}\n--- stderr:\n{err[-3000:]}"
               f"\n--- hits: {{{', '.join(f'{n}: {s.hit_paths()}' for n, s in sims.items())}}}"
               f"\n--- gateway log:\n{log[-6000:]}")
    assert code is not None, f"{agent} did not finish within {TIMEOUT:.0f} s" + context
    assert code == 0, context

    # The first target served both turns (the tool call, then the answer it cut); the second only the continuation.
    first_paths, second_paths = sims[first].hit_paths(), sims[second].hit_paths()
    assert len(first_paths) == 1 and list(first_paths.values()) == [2], \
        "the first target did not serve both the tool call and the final answer, and only them" + context
    assert len(second_paths) == 1 and list(second_paths.values()) == [1], \
        "the second target was asked more than the continuation" + context
    (first_path, _), (second_path, _) = first_paths.popitem(), second_paths.popitem()
    assert sims[first].pending_faults() == [], "a fault was left unused" + context
    cut = sims[first].last(first_path)
    assert token in json.dumps(cut), "the cut request was not the final turn (no tool result in it)" + context

    # The first target's whole answer, had it not been cut (its request asked again, directly; nothing is queued).
    full = answer_of(sims[first], first_path, cut)
    delivered = f"{first} says: tool said:"
    assert full.startswith(delivered + " ") and token in full, f"unexpected answer {full[:300]!r}" + context

    # The second target was asked to continue exactly what was delivered, with the tool result before it.
    asked = sims[second].last(second_path)
    messages = asked["messages"]
    if sims[second].kind == "anthropic":  # prefill: the delivered text as a final assistant message
        assert messages[-1]["role"] == "assistant", f"{messages[-1]!r}" + context
        assert text_of(messages[-1]["content"]) == delivered, f"continuation asked: {messages[-1]!r}" + context
    else:  # instruction: the delivered text as an assistant message, then the instruction
        assert [m["role"] for m in messages[-2:]] == ["assistant", "user"], f"{messages[-2:]!r}" + context
        assert text_of(messages[-2]["content"]) == delivered, f"continuation asked: {messages[-2]!r}" + context
        assert text_of(messages[-1]["content"]).startswith(INSTRUCTION), f"{messages[-1]!r}" + context
    assert token in json.dumps(messages[:-1]), "the tool result did not reach the second target" + context

    # The agent printed the whole answer once: the delivered words, then the continuation as the second target gives
    # it (asked again, directly), with nothing lost or repeated at the seam. That is the first target's whole answer:
    # word for word up to the system text it echoes last, which may be spaced otherwise (Claude Code's three system
    # blocks: the Anthropic simulator joins them with nothing; nines gives them to an OpenAI target as one system
    # message, joined with blank lines).
    continuation = answer_of(sims[second], second_path, asked)
    spliced = delivered + continuation
    assert spliced.startswith(full.split(" [system:")[0]), \
        f"the continuation does not go on from the cut:\n{spliced[:400]!r}\nvs the whole answer\n{full[:400]!r}" \
        + context
    # Past the cut the echoed system text is the second simulator's: Claude Code's in-conversation `role: "system"`
    # message is part of the system prompt once translated for an OpenAI target, not for the Anthropic simulator.
    assert spliced.split(" [system:")[0] == full.split(" [system:")[0] and " [system:" in spliced, \
        f"the spliced answer is not the first target's:\n{spliced[:600]!r}\nvs\n{full[:600]!r}" + context
    assert spliced.strip() in out, f"the agent did not print the complete answer:\n{spliced.strip()!r}" + context
    assert out.count(f"{first} says:") == 1 and f"{second} says:" not in out, context
    rest = (out + "\n" + err).replace(spliced.strip(), "")
    errors = [line for line in rest.splitlines() if re.search(r"error|exception|disconnect|cut off|retry", line, re.I)]
    assert not errors, "the agent reported an error:\n" + "\n".join(errors[:20]) + context

    # The gateway: one break, on the first target, resumed on the second; the request ended resumed; nothing else.
    lines = log.splitlines()
    failed = [line for line in lines if "attempt failed" in line]
    assert len(failed) == 1 and f'target_name="{first}/' in failed[0] and 'kind="stream_cut"' in failed[0] \
        and "after_commit=true" in failed[0], context
    resumed = [line for line in lines if "stream resumed on another target after a break" in line]
    assert len(resumed) == 1 and f'target_name="{second}/' in resumed[0] and f'broken="{first}/' in resumed[0] \
        and f"delivered_bytes={len(delivered.encode())}" in resumed[0], context
    endings = [re.search(r'ending="(\w+)"', line).group(1) for line in lines if "request completed" in line]
    assert endings == ["served", "resumed"], context
    assert not [line for line in lines if line not in failed and re.search(r"\b(ERROR|WARN|error)\b", line)], context

    if strace_log is not None:
        bad = outside_loopback(strace_log)
        assert not bad, f"{agent} tried to leave loopback:\n" + "\n".join(bad[:20]) + context
