"""The two-step tool conversation (call → result → answer) through the official SDKs, against every provider kind,
plain and streaming. The typed objects must come back whole: tool ids, parsed arguments, stop reasons, usage."""

import json

import anthropic
import openai
import pytest

QUESTION = "weather in Paris?"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

# provider/model addressed directly: one target of each kind (the simulators' names say which).
KINDS = {
    "anthropic": ("second-anthropic/claude-sonnet-4-5", "second-anthropic"),
    "openai": ("second-openai/gpt-4.1", "second-openai"),
    "gemini": ("gemini/gemini-2.5-flash", "gemini"),
}


@pytest.fixture
def oai(gateway):
    return openai.OpenAI(base_url=gateway + "/v1", api_key="unused", max_retries=0)


@pytest.fixture
def ant(gateway):
    return anthropic.Anthropic(base_url=gateway, api_key="unused", max_retries=0)


OPENAI_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": SCHEMA}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Weather for a city", "input_schema": SCHEMA}]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", KINDS.keys())
def test_openai_sdk_tool_loop(oai, kind, stream):
    model, sim = KINDS[kind]
    messages = [{"role": "user", "content": QUESTION}]
    if stream:
        with oai.chat.completions.stream(model=model, messages=messages, tools=OPENAI_TOOLS) as s:
            completion = s.get_final_completion()
    else:
        completion = oai.chat.completions.create(model=model, messages=messages, tools=OPENAI_TOOLS)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.id and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": QUESTION}
    if not stream:
        assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0

    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"}]
    if stream:
        with oai.chat.completions.stream(model=model, messages=messages, tools=OPENAI_TOOLS) as s:
            answer = s.get_final_completion()
    else:
        answer = oai.chat.completions.create(model=model, messages=messages, tools=OPENAI_TOOLS)
    assert answer.choices[0].message.content == f"{sim} says: tool said: 18C and sunny"
    assert answer.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", KINDS.keys())
def test_anthropic_sdk_tool_loop(ant, kind, stream):
    model, sim = KINDS[kind]
    messages = [{"role": "user", "content": QUESTION}]
    kw = dict(model=model, max_tokens=300, tools=ANTHROPIC_TOOLS)
    if stream:
        with ant.messages.stream(messages=messages, **kw) as s:
            message = s.get_final_message()
    else:
        message = ant.messages.create(messages=messages, **kw)
    assert message.stop_reason == "tool_use"
    uses = [b for b in message.content if b.type == "tool_use"]
    assert len(uses) == 1
    use = uses[0]
    assert use.id and use.name == "get_weather"
    assert use.input == {"city": QUESTION}
    assert message.usage.output_tokens > 0

    messages += [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                               "content": "18C and sunny"}]}]
    if stream:
        with ant.messages.stream(messages=messages, **kw) as s:
            answer = s.get_final_message()
    else:
        answer = ant.messages.create(messages=messages, **kw)
    assert answer.stop_reason == "end_turn"
    assert answer.content[0].text == f"{sim} says: tool said: 18C and sunny"


def test_parallel_calls_and_images_cross_dialects(ant, oai):
    # Two calls in one answer, from an OpenAI-format target to an Anthropic client.
    tools = ANTHROPIC_TOOLS + [{"name": "get_time", "input_schema": {"type": "object", "properties": {"tz": {"type": "string"}}}}]
    message = ant.messages.create(model=KINDS["openai"][0], max_tokens=300, tools=tools,
                                  messages=[{"role": "user", "content": "parallel please"}])
    assert [b.name for b in message.content if b.type == "tool_use"] == ["get_weather", "get_time"]
    # A base64 image from an OpenAI client reaches an Anthropic-format target.
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
    completion = oai.chat.completions.create(model=KINDS["anthropic"][0], messages=[{"role": "user", "content": [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]}])
    assert completion.choices[0].message.content == "second-anthropic says: what is this? [images: 1]"
