"""The official google-genai SDK, unchanged but for its base URL, against nines' Gemini doors: generate_content and
generate_content_stream (plain text and a two-step function-call loop) against every provider kind, with the first
target of the route down, under both the SDK's default API version (v1beta) and v1."""

import pytest
from google import genai
from google.genai import types

QUESTION = "weather in Paris?"
SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}

# Routes of the shared gateway whose first target is "first-openai" or "first-anthropic" (taken down by each test)
# and whose second is of each kind.
ROUTES = {
    "anthropic": ("gpt-route", "first-openai", "second-anthropic"),
    "openai": ("claude-route", "first-anthropic", "second-openai"),
    "gemini": ("gemini-route", "first-openai", "gemini"),
}


def client(gateway, version):
    return genai.Client(api_key="unused",
                        http_options=types.HttpOptions(base_url=gateway, api_version=version))


def config(**kw):
    return types.GenerateContentConfig(system_instruction="be brief", max_output_tokens=300, **kw)


@pytest.mark.parametrize("version", ["v1beta", "v1"])
@pytest.mark.parametrize("kind", ROUTES.keys())
def test_generate_content_survives_a_down_first_target(gateway, sims, kind, version):
    route, first, second = ROUTES[kind]
    sims[first].down()
    c = client(gateway, version)
    r = c.models.generate_content(model=route, contents="hello there", config=config())
    assert r.text == f"{second} says: hello there [system: be brief]"
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.usage_metadata.prompt_token_count > 0 and r.usage_metadata.candidates_token_count > 0
    assert sims[first].hits() >= 1

    chunks = list(c.models.generate_content_stream(model=route, contents="stream it", config=config()))
    assert "".join(ch.text or "" for ch in chunks) == f"{second} says: stream it [system: be brief]"
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("kind", ROUTES.keys())
def test_function_call_loop(gateway, sims, kind, stream):
    route, first, second = ROUTES[kind]
    sims[first].down()
    c = client(gateway, "v1beta")
    tools = [types.Tool(function_declarations=[
        types.FunctionDeclaration(name="get_weather", description="Weather for a city",
                                  parameters_json_schema=SCHEMA)])]
    cfg = config(tools=tools, automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    contents = [types.Content(role="user", parts=[types.Part.from_text(text=QUESTION)])]

    def ask():
        if not stream:
            return c.models.generate_content(model=route, contents=contents, config=cfg)
        chunks = list(c.models.generate_content_stream(model=route, contents=contents, config=cfg))
        parts = [p for ch in chunks if ch.candidates and ch.candidates[0].content
                 for p in (ch.candidates[0].content.parts or [])]
        return types.GenerateContentResponse(candidates=[types.Candidate(
            content=types.Content(role="model", parts=parts),
            finish_reason=chunks[-1].candidates[0].finish_reason)])

    r = ask()
    calls = r.function_calls
    assert len(calls) == 1
    assert calls[0].name == "get_weather"
    assert calls[0].args == {"city": QUESTION}

    contents += [r.candidates[0].content,
                 types.Content(role="user", parts=[types.Part.from_function_response(
                     name="get_weather", response={"result": "18C and sunny"})])]
    answer = ask()
    assert answer.text == f"{second} says: tool said: 18C and sunny [system: be brief]"
    assert answer.candidates[0].finish_reason == types.FinishReason.STOP


@pytest.mark.parametrize("kind", ROUTES.keys())
def test_automatic_function_calling(gateway, sims, kind):
    """The SDK's own loop: it calls the Python function the model asks for and sends the result back."""
    route, first, second = ROUTES[kind]
    sims[first].down()
    seen = []

    def get_weather(city: str) -> str:
        """Weather for a city."""
        seen.append(city)
        return "18C and sunny"

    c = client(gateway, "v1beta")  # held: the SDK closes its HTTP client when the Client object is collected
    r = c.models.generate_content(model=route, contents=QUESTION, config=config(tools=[get_weather]))
    assert seen == [QUESTION]
    assert r.text == f"{second} says: tool said: 18C and sunny [system: be brief]"


def test_count_tokens_and_models(gateway, sims):
    c = client(gateway, "v1beta")
    # gemini-route ends on a Gemini target: an exact count, past the first (OpenAI) target that cannot count.
    r = c.models.count_tokens(model="gemini-route", contents="one two three four")
    assert r.total_tokens == 4
    names = [m.name for m in c.models.list()]
    assert "models/gemini-route" in names and "models/gpt-route" in names
    assert c.models.get(model="claude-route").name == "models/claude-route"


def test_errors_reach_the_sdk_as_google_errors(gateway, sims):
    from google.genai import errors
    c = client(gateway, "v1beta")
    with pytest.raises(errors.ClientError) as e:
        c.models.generate_content(model="no-such-route", contents="hi")
    assert e.value.code == 404
    assert e.value.status == "NOT_FOUND"
    assert "no-such-route" in e.value.message
