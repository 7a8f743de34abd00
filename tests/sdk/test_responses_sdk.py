"""The official openai SDK's Responses API (`client.responses.create` and `client.responses.stream`), unchanged but
for its base URL, against every provider kind with the first target of the route down: plain text, a two-step
function-tool loop, and a `previous_response_id` follow-up, which nines resolves from its own store."""

import json

import openai
import pytest

QUESTION = "weather in Paris?"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
          "additionalProperties": False}
TOOLS = [{"type": "function", "name": "get_weather", "description": "Weather for a city", "parameters": SCHEMA,
          "strict": True}]

# route, the first target (taken down), the fallback of each kind.
ROUTES = {
    "anthropic": ("gpt-route", "first-openai", "second-anthropic"),
    "openai": ("claude-route", "first-anthropic", "second-openai"),
    "gemini": ("gemini-route", "first-openai", "gemini"),
    "openai-responses": ("responses-route", "first-anthropic", "responses"),
}


@pytest.fixture
def oai(gateway):
    return openai.OpenAI(base_url=gateway + "/v1", api_key="unused", max_retries=0)


def ask(oai, stream, **kw):
    if not stream:
        return oai.responses.create(**kw)
    with oai.responses.stream(**kw) as s:
        deltas = [e.delta for e in s if e.type == "response.output_text.delta"]
        final = s.get_final_response()
    assert "".join(deltas) == final.output_text
    return final


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", ROUTES.keys())
def test_text_and_follow_up(oai, sims, kind, stream):
    route, first, second = ROUTES[kind]
    sims[first].down()
    r = ask(oai, stream, model=route, instructions="be brief", input="hello there")
    assert r.output_text == f"{second} says: hello there [system: be brief]"
    assert r.status == "completed"
    assert r.id.startswith("resp_")
    assert r.usage.input_tokens > 0 and r.usage.output_tokens > 0
    assert sims[first].hits() >= 1

    # The follow-up carries only the new turn; nines sends the whole conversation.
    follow = ask(oai, stream, model=route, previous_response_id=r.id, input="and then?")
    assert follow.output_text == f"{second} says: and then?"
    assert oai.responses.retrieve(follow.id).output_text == follow.output_text


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", ROUTES.keys())
def test_function_tool_loop(oai, sims, kind, stream):
    route, first, second = ROUTES[kind]
    sims[first].down()
    r = ask(oai, stream, model=route, input=QUESTION, tools=TOOLS)
    calls = [i for i in r.output if i.type == "function_call"]
    assert len(calls) == 1
    call = calls[0]
    assert call.name == "get_weather" and call.call_id
    assert json.loads(call.arguments) == {"city": QUESTION}

    # The stateless form: the whole conversation sent back, the SDK's own output items included.
    # (`parsed_arguments` is the stream helper's own addition, not an API field.)
    output = [i.model_dump(exclude_none=True, exclude={"parsed_arguments"}) for i in r.output]
    items = [{"role": "user", "content": QUESTION}, *output,
             {"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}]
    answer = ask(oai, stream, model=route, input=items, tools=TOOLS, store=False)
    assert answer.output_text == f"{second} says: tool said: 18C and sunny"

    # The stateful form: only the tool output, after previous_response_id.
    answer = ask(oai, stream, model=route, previous_response_id=r.id, tools=TOOLS,
                 input=[{"type": "function_call_output", "call_id": call.call_id, "output": "18C and sunny"}])
    assert answer.output_text == f"{second} says: tool said: 18C and sunny"


def test_stored_responses_and_errors(oai, sims):
    r = oai.responses.create(model="gpt-route", input="keep me")
    assert oai.responses.retrieve(r.id).id == r.id
    oai.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError) as e:
        oai.responses.create(model="gpt-route", input="hi", previous_response_id="resp_missing")
    assert "resp_missing" in str(e.value)
    with pytest.raises(openai.NotFoundError):
        oai.responses.create(model="no-such-route", input="hi")
