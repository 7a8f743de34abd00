"""Streams that survive (docs/streams.md), through the official SDKs: a stream that breaks after the client has part of
the answer (a cut, a stall past the idle limit, a malformed event, the provider's own in-band error event) is
continued by the route's next target and spliced into the same client stream, so the SDK sees ONE answer: one id,
one start, the first target's full text with nothing repeated, one stop reason, usage summed. What may not be
continued (a tool call started) and what has nothing to continue on ends in the dialect's own error event, which the
SDK raises or reports cleanly. And a hedged slow first token.

Each test starts its own gateway (as test_health.py does) over route "r" in front of the session's simulators. The
first target always speaks the client's own dialect, so its bytes pass through until the break. The simulators'
answers are deterministic ("{name} says: {prompt} [system: …]", one delta per word, a continuation answered from the
word after what was delivered), so a resumed answer reads exactly like the first simulator's whole answer.
"""

import json
import time
import urllib.parse

import anthropic
import openai
import pytest
from google import genai
from google.genai import types


PROMPT = "one two three four five six seven eight nine ten"
SYSTEM = "be brief"
INSTRUCTION = "Your previous reply was cut off."
MODELS = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4.1", "openai-responses": "gpt-5",
          "gemini": "gemini-2.5-flash"}
AFTER = 7  # events of the first target's stream before it breaks: some words delivered on every kind


def full(name):
    """The whole answer of the simulator called `name` to PROMPT with SYSTEM."""
    return f"{name} says: {PROMPT} [system: {SYSTEM}]"


def words(n, name):
    """The first `n` words of `name`'s answer: what the client holds when the stream breaks."""
    return " ".join(full(name).split()[:n])


@pytest.fixture
def start(sims, serve):
    """Start a gateway over route "r" = `targets` ((sim name, kind) pairs, in order), each provider with `retries = 0`,
    `timeouts` and its line of `extra` (by sim name), the route with `route_extra`; stopped after the test."""
    def go(*targets, route_extra="", extra=None, timeouts='{ first_byte = "2s", idle = "1s" }'):
        extra = extra or {}
        toml = ""
        for name, kind in targets:
            toml += (f'[providers.{name}]\nkind = "{kind}"\nbase_url = "{sims[name].base_for(kind)}"\nretries = 0\n'
                     f'timeouts = {timeouts}\n{extra.get(name, "")}\n\n')
        listed = ", ".join(f'"{name}/{MODELS[kind]}"' for name, kind in targets)
        toml += f'[routes.r]\ntargets = [{listed}]\n{route_extra}\n'
        return serve(toml)  # the simulators were reset for this test by conftest's clean_sims

    return go


def last_request(sim):
    """The last JSON body `sim` received on its one model path."""
    paths = list(sim._call("GET", "/_sim/hits")["paths"])
    assert len(paths) == 1, paths
    return sim._call("GET", "/_sim/last?path=" + urllib.parse.quote(paths[0], safe=""))


def tail(kind, body):
    """The last two messages of a request of `kind`, as (role, text) with role "user" or "assistant"."""
    def text(content, types_):
        if isinstance(content, str):
            return content
        return "".join(p.get("text", "") for p in content or [] if p.get("type") in types_)

    if kind == "anthropic":
        msgs = [(m["role"], text(m["content"], {"text"})) for m in body["messages"]]
    elif kind == "openai":
        msgs = [(m["role"], text(m.get("content"), {"text"})) for m in body["messages"] if m["role"] != "system"]
    elif kind == "openai-responses":
        items = [{"role": "user", "content": body["input"]}] if isinstance(body["input"], str) else body["input"]
        msgs = [(i["role"], text(i["content"], {"input_text", "output_text"})) for i in items if "role" in i]
    else:
        msgs = [("assistant" if c.get("role") == "model" else "user",
                 "".join(p.get("text", "") for p in c["parts"] if not p.get("thought"))) for c in body["contents"]]
    return msgs[-2:]


def assert_asked_to_continue(sim, kind, delivered, form):
    """`sim` (of `kind`) was last asked to continue `delivered`, in `form` ("prefill" or "instruction")."""
    body = last_request(sim)
    last = tail(kind, body)
    if form == "prefill":
        assert last[-2][0] == "user" and last[-1][0] == "assistant", body
        assert last[-1][1] == delivered, body
        assert INSTRUCTION not in json.dumps(body), body
    else:
        (role_a, said), (role_u, asked) = last
        assert (role_a, role_u) == ("assistant", "user"), body
        assert said.rstrip() == delivered, body
        assert asked.startswith(INSTRUCTION), body


# ---- the four clients: each returns what the SDK made of the stream ------------------------------------------------

def chat_stream(url, **kw):
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    stream = client.chat.completions.create(
        model="r", stream=True, stream_options={"include_usage": True},
        messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}], **kw)
    ids, text, finishes, usage = set(), "", [], None
    for chunk in stream:
        ids.add(chunk.id)
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            if choice.finish_reason:
                finishes.append(choice.finish_reason)
    assert len(ids) == 1, f"one completion id, got {ids}"
    assert finishes == ["stop"]
    assert usage is not None
    return text, usage.completion_tokens


def messages_stream(url):
    client = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)
    with client.messages.stream(model="r", max_tokens=300, system=SYSTEM,
                                messages=[{"role": "user", "content": PROMPT}]) as s:
        events = list(s)
        final = s.get_final_message()
    starts = [e for e in events if e.type == "message_start"]
    assert len(starts) == 1, "one message_start"
    assert final.id == starts[0].message.id
    assert [e.delta.stop_reason for e in events if e.type == "message_delta"] == ["end_turn"]
    assert len([e for e in events if e.type == "message_stop"]) == 1
    assert final.stop_reason == "end_turn"
    streamed = "".join(e.text for e in events if e.type == "text")
    assert [b.type for b in final.content] == ["text"], final.content
    assert final.content[0].text == streamed
    return streamed, final.usage.output_tokens


def responses_stream(url):
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    with client.responses.stream(model="r", instructions=SYSTEM, input=PROMPT) as s:
        events = list(s)  # the SDK raises "Lifecycle response identity changed" if a lifecycle event's id differs
        final = s.get_final_response()
    created = [e for e in events if e.type == "response.created"]
    assert len(created) == 1, "one response.created"
    assert final.id == created[0].response.id
    assert [e.type for e in events if e.type in ("response.completed", "response.failed", "error")] \
        == ["response.completed"]
    assert final.status == "completed"
    streamed = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert final.output_text == streamed
    return streamed, final.usage.output_tokens


def gemini_stream(url):
    client = genai.Client(api_key="unused", http_options=types.HttpOptions(base_url=url, api_version="v1beta"))
    chunks = list(client.models.generate_content_stream(
        model="r", contents=PROMPT,
        config=types.GenerateContentConfig(system_instruction=SYSTEM, max_output_tokens=300)))
    assert len({c.response_id for c in chunks}) == 1, [c.response_id for c in chunks]
    finishes = [c.candidates[0].finish_reason for c in chunks if c.candidates and c.candidates[0].finish_reason]
    assert finishes == [types.FinishReason.STOP]
    text = "".join(p.text or "" for c in chunks if c.candidates and c.candidates[0].content
                   for p in c.candidates[0].content.parts or [])
    return text, chunks[-1].usage_metadata.candidates_token_count


# client: (its reader, first target of the client's own dialect, second target, how the second is asked to
# continue, the words the first has delivered after AFTER events).
CLIENTS = {
    "openai-chat": (chat_stream, ("first-openai", "openai"), ("second-anthropic", "anthropic"), "prefill", 6),
    "anthropic": (messages_stream, ("first-anthropic", "anthropic"), ("second-openai", "openai"), "instruction", 4),
    "openai-responses": (responses_stream, ("responses", "openai-responses"), ("gemini", "gemini"),
                         "instruction", 3),
    "genai": (gemini_stream, ("gemini", "gemini"), ("responses", "openai-responses"), "instruction", 7),
}

BREAKS = {
    "cut": {"kind": "cut", "after": AFTER},
    "stall": {"kind": "stall", "after": AFTER, "ms": 20000},  # the idle limit is 1 s
    "malformed": {"kind": "malformed", "after": AFTER},
    "in-band-529": {"kind": "in_band_error", "after": AFTER, "status": 529},
}


# Gateway bugs these SDKs trip on (the tests are right; strict: they fail loudly, XPASS, once the bug is fixed).
@pytest.mark.parametrize("brk", BREAKS.keys())
@pytest.mark.parametrize("client", CLIENTS.keys())
def test_a_broken_stream_is_completed_by_the_next_target_as_one_answer(start, sims, client, brk):
    read, (a, akind), (b, bkind), form, delivered = CLIENTS[client]
    url = start((a, akind), (b, bkind))
    sims[a].fault(**BREAKS[brk])
    began = time.monotonic()
    text, output_tokens = read(url)
    assert text == full(a), "the first target's words, then the continuation, nothing twice"
    assert time.monotonic() - began < 10
    assert (sims[a].hits(), sims[b].hits()) == (1, 1)
    assert_asked_to_continue(sims[b], bkind, words(delivered, a), form)
    # Usage adds both attempts up: more output than the continuation alone (the words after those delivered).
    assert output_tokens >= len(full(a).split()), output_tokens


def test_responses_sdk_gets_one_answer_when_a_translated_first_target_breaks(start, sims):
    """The Responses door over an Anthropic first target (nines writes every event itself): the splice passes the
    SDK's checks of response and item identity."""
    url = start(("first-anthropic", "anthropic"), ("second-openai", "openai"))
    sims["first-anthropic"].fault(kind="cut", after=AFTER)
    text, output_tokens = responses_stream(url)
    assert text == full("first-anthropic")
    assert_asked_to_continue(sims["second-openai"], "openai", words(4, "first-anthropic"), "instruction")
    assert output_tokens >= len(full("first-anthropic").split())


def test_a_target_declared_with_prefill_is_asked_with_a_prefill(start, sims):
    url = start(("first-anthropic", "anthropic"), ("second-openai", "openai"),
                extra={"second-openai": "capabilities = { prefill = true }"})
    sims["first-anthropic"].fault(kind="cut", after=AFTER)
    text, _ = messages_stream(url)
    assert text == full("first-anthropic")
    assert_asked_to_continue(sims["second-openai"], "openai", words(4, "first-anthropic"), "prefill")


def test_a_refused_prefill_is_asked_again_as_an_instruction(start, sims):
    url = start(("first-openai", "openai"), ("second-anthropic", "anthropic"))
    sims["first-openai"].fault(kind="cut", after=AFTER)
    sims["second-anthropic"]._call("POST", "/_sim/refuse_prefill", {"refuse": True})
    text, _ = chat_stream(url)
    assert text == full("first-openai")
    assert sims["second-anthropic"].hits() == 2, "the prefill, refused with a 400; then the instruction"
    assert_asked_to_continue(sims["second-anthropic"], "anthropic", words(6, "first-openai"), "instruction")


def test_a_continuation_that_repeats_the_delivered_words_is_trimmed(start, sims):
    url = start(("first-anthropic", "anthropic"), ("second-openai", "openai"))
    sims["first-anthropic"].fault(kind="cut", after=AFTER)
    sims["second-openai"].fault(kind="repeat", words=3)
    text, _ = messages_stream(url)
    assert text == full("first-anthropic")


# ---- what is not continued -----------------------------------------------------------------------------------------

TOOL_PROMPT = 'go [[sim:call Bash {"command": "echo one two three four five six"}]]'
BASH = {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}


# Anthropic: message_start, content_block_start (tool_use), ping, three input_json_delta, content_block_stop, ...
# OpenAI chat: the call's head, three argument pieces, the finish chunk, ...
@pytest.mark.parametrize("after", [4, 7], ids=["inside-the-arguments", "after-the-call"])
def test_anthropic_sdk_stream_broken_in_or_after_a_tool_call_raises_and_the_fallback_is_not_asked(start, sims, after):
    url = start(("first-anthropic", "anthropic"), ("second-openai", "openai"))
    sims["first-anthropic"].fault(kind="cut", after=after)
    client = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)
    seen = []
    with pytest.raises(anthropic.APIError) as err:  # a JSON decode error or a quiet end would fail here
        with client.messages.stream(model="r", max_tokens=300, messages=[{"role": "user", "content": TOOL_PROMPT}],
                                    tools=[{"name": "Bash", "description": "run", "input_schema": BASH}]) as s:
            for event in s:
                seen.append(event.type)
    assert "content_block_start" in seen, seen
    assert "message_stop" not in seen, seen
    assert not isinstance(err.value.__cause__, json.JSONDecodeError)
    assert sims["first-anthropic"].hits() == 1
    assert sims["second-openai"].hits() == 0, "a started tool call is never continued"


@pytest.mark.parametrize("after", [2, 4], ids=["inside-the-arguments", "after-the-call"])
def test_openai_sdk_stream_broken_in_or_after_a_tool_call_raises_and_the_fallback_is_not_asked(start, sims, after):
    url = start(("first-openai", "openai"), ("second-anthropic", "anthropic"))
    sims["first-openai"].fault(kind="cut", after=after)
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    calls = []
    with pytest.raises(openai.APIError):
        stream = client.chat.completions.create(
            model="r", stream=True, messages=[{"role": "user", "content": TOOL_PROMPT}],
            tools=[{"type": "function", "function": {"name": "Bash", "parameters": BASH}}])
        for chunk in stream:
            for choice in chunk.choices:
                calls += choice.delta.tool_calls or []
                assert choice.finish_reason is None, "the broken stream must not end as a complete answer"
    assert calls and calls[0].function.name == "Bash"
    assert sims["first-openai"].hits() == 1
    assert sims["second-anthropic"].hits() == 0, "a started tool call is never continued"


@pytest.mark.parametrize("brk", ["malformed", "cut", "in-band-529"])
def test_anthropic_sdk_on_a_single_target_route_gets_a_clean_api_error(start, sims, brk):
    url = start(("first-anthropic", "anthropic"))
    sims["first-anthropic"].fault(**BREAKS[brk])
    client = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)
    text = ""
    with pytest.raises(anthropic.APIError) as err:  # not a JSONDecodeError from the SDK's own parsing
        with client.messages.stream(model="r", max_tokens=300, system=SYSTEM,
                                    messages=[{"role": "user", "content": PROMPT}]) as s:
            for t in s.text_stream:
                text += t
    assert text == words(4, "first-anthropic"), "what was delivered before the break, nothing more"
    assert not isinstance(err.value.__cause__, json.JSONDecodeError)
    assert sims["first-anthropic"].hits() == 1


@pytest.mark.parametrize("brk", ["cut", "malformed"])
def test_responses_sdk_with_resume_off_sees_a_clean_failure_of_the_same_response(start, sims, brk):
    url = start(("responses", "openai-responses"), ("gemini", "gemini"), route_extra="resume = false")
    sims["responses"].fault(**{**BREAKS[brk], "after": 5})  # four events, then the first delta
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    events = []
    # The SDK raises openai.APIError on the error event; "Lifecycle response identity changed" (a RuntimeError), a
    # JSON decode error or a quiet end would fail here.
    with pytest.raises(openai.APIError) as err:
        with client.responses.stream(model="r", instructions=SYSTEM, input=PROMPT) as s:
            for event in s:
                events.append(event)
    assert "broke after the answer had started" in err.value.message, err.value.message
    types_ = [e.type for e in events]
    assert types_.count("response.created") == 1, types_
    assert "response.completed" not in types_, types_
    assert types_[-1] == "response.failed", types_
    created, failed = events[0], events[-1]
    assert created.type == "response.created"
    assert failed.response.id == created.response.id
    assert failed.response.status == "failed" and failed.response.error is not None
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == words(1, "responses")
    assert sims["responses"].hits() == 1
    assert sims["gemini"].hits() == 0, "resume = false: the fallback is not asked"


# ---- hedging -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("first,second", [(("first-anthropic", "anthropic"), ("second-openai", "openai")),
                                          (("first-openai", "openai"), ("second-anthropic", "anthropic"))],
                         ids=["anthropic-first", "openai-first"])
def test_a_slow_first_token_is_hedged(start, sims, first, second):
    (a, _), (b, _) = first, second
    # Long timeouts: without the hedge, the first token would come after the 20 s stall.
    url = start(first, second, route_extra='hedge = { after = "300ms" }',
                timeouts='{ first_byte = "30s", idle = "30s" }')
    sims[a].fault(kind="stall", after=1, ms=20000)  # headers and one event, then nothing for 20 s
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    began = time.monotonic()
    raw = client.chat.completions.with_raw_response.create(
        model="r", stream=True, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}])
    first_token, text, finishes = None, "", []
    for chunk in raw.parse():
        for choice in chunk.choices:
            if choice.delta.content and first_token is None:
                first_token = time.monotonic() - began
            text += choice.delta.content or ""
            finishes += [choice.finish_reason] if choice.finish_reason else []
    assert first_token is not None and 0.3 <= first_token < 3, first_token
    assert text == full(b)
    assert finishes == ["stop"]
    assert raw.headers["x-nines-attempts"] == "2"
    assert raw.headers["x-nines-target"] == f"{b}/{MODELS[second[1]]}"
    assert (sims[a].hits(), sims[b].hits()) == (1, 1)
