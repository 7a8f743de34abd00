"""The official `openai` SDK, unchanged but for its base URL, against the gateway."""

import openai
import pytest

from conftest import FAULTS


@pytest.fixture
def client(gateway):
    return openai.OpenAI(base_url=gateway + "/v1", api_key="unused", max_retries=0)


MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello gateway"}]
EXPECTED = "second-anthropic says: hello gateway [system: be brief]"


def collect(stream):
    text, finish, usage = "", None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    return text, finish, usage


def test_plain_with_first_target_down(client, sims):
    sims["first-openai"].down()
    raw = client.chat.completions.with_raw_response.create(model="gpt-route", messages=MESSAGES)
    completion = raw.parse()
    assert completion.choices[0].message.content == EXPECTED
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens > 0 and completion.usage.prompt_tokens > 0
    assert raw.headers["x-nines-target"] == "second-anthropic/claude-sonnet-4-5"
    assert raw.headers["x-nines-attempts"] == "2"


def test_stream_with_first_target_down(client, sims):
    sims["first-openai"].down()
    stream = client.chat.completions.create(
        model="gpt-route", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
    text, finish, usage = collect(stream)
    assert text == EXPECTED
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == len(EXPECTED.split())


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("fault", FAULTS.keys())
def test_every_fault_is_invisible(client, sims, fault, stream):
    sims["first-openai"].fault(**FAULTS[fault])
    if stream:
        text, finish, _ = collect(client.chat.completions.create(model="gpt-route", messages=MESSAGES, stream=True))
    else:
        completion = client.chat.completions.create(model="gpt-route", messages=MESSAGES)
        text, finish = completion.choices[0].message.content, completion.choices[0].finish_reason
    assert text == EXPECTED
    assert finish == "stop"
    assert sims["first-openai"].hits() == 1
    assert sims["second-anthropic"].hits() == 1


def test_bad_request_is_not_failed_over(client, sims):
    sims["first-openai"].fault(kind="status", status=400)
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model="gpt-route", messages=MESSAGES)
    assert err.value.status_code == 400
    assert err.value.body["type"] == "invalid_request_error"
    assert sims["second-anthropic"].hits() == 0


def test_all_targets_down_is_one_clear_error(client, sims):
    sims["first-openai"].down(503)
    sims["second-anthropic"].down(529)
    with pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="gpt-route", messages=MESSAGES)
    assert err.value.status_code == 503
    assert "first-openai/gpt-4.1" in err.value.message
    assert "second-anthropic/claude-sonnet-4-5" in err.value.message


def test_cut_after_first_token_raises_instead_of_ending_quietly(client, sims):
    # The Anthropic-format fallback cuts its stream after a few content events: the SDK must see an error.
    sims["first-openai"].down()
    sims["second-anthropic"].fault(kind="cut", after=5)
    with pytest.raises(openai.APIError):
        collect(client.chat.completions.create(model="gpt-route", messages=MESSAGES, stream=True))


def test_unknown_model_is_a_404_listing_the_routes(client):
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert "gpt-route" in err.value.message


def test_gemini_target(client, sims):
    sims["first-openai"].down()
    text, finish, _ = collect(client.chat.completions.create(model="gemini-route", messages=MESSAGES, stream=True))
    assert text == "gemini says: hello gateway [system: be brief]"
    assert finish == "stop"


def test_models_lists_the_routes(client):
    ids = {m.id for m in client.models.list()}
    assert {"gpt-route", "claude-route", "gemini-route"} <= ids
