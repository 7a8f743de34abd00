"""The official `anthropic` SDK, unchanged but for its base URL, against the gateway."""

import anthropic
import pytest

from conftest import FAULTS


@pytest.fixture
def client(gateway):
    return anthropic.Anthropic(base_url=gateway, api_key="unused", max_retries=0)


MESSAGES = [{"role": "user", "content": "hello gateway"}]
EXPECTED = "second-openai says: hello gateway [system: be brief]"


def create(client, **kw):
    return client.messages.create(model="claude-route", max_tokens=200, system="be brief", messages=MESSAGES, **kw)


def test_plain_with_first_target_down(client, sims):
    sims["first-anthropic"].down()
    raw = client.messages.with_raw_response.create(
        model="claude-route", max_tokens=200, system="be brief", messages=MESSAGES)
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant"
    assert message.content[0].type == "text"
    assert message.content[0].text == EXPECTED
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0
    assert raw.headers["x-nines-target"] == "second-openai/gpt-4.1"


def test_stream_with_first_target_down(client, sims):
    sims["first-anthropic"].down()
    with client.messages.stream(model="claude-route", max_tokens=200, system="be brief", messages=MESSAGES) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text == EXPECTED
    assert final.content[0].text == EXPECTED
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(EXPECTED.split())


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("fault", FAULTS.keys())
def test_every_fault_is_invisible(client, sims, fault, stream):
    sims["first-anthropic"].fault(**FAULTS[fault])
    if stream:
        with client.messages.stream(model="claude-route", max_tokens=200, system="be brief", messages=MESSAGES) as s:
            final = s.get_final_message()
    else:
        final = create(client)
    assert final.content[0].text == EXPECTED
    assert final.stop_reason == "end_turn"
    assert sims["first-anthropic"].hits() == 1
    assert sims["second-openai"].hits() == 1


def test_max_tokens_stop_reason_crosses_dialects(client, sims):
    sims["first-anthropic"].down()
    message = client.messages.create(model="claude-route", max_tokens=2, messages=MESSAGES)
    assert message.stop_reason == "max_tokens"
    assert message.usage.output_tokens == 2


def test_bad_request_is_not_failed_over(client, sims):
    with pytest.raises(anthropic.BadRequestError) as err:
        # Under API version 2026-10-21 (what this SDK sends) Anthropic refuses temperature: the provider says 400,
        # and the gateway must not try elsewhere.
        create(client, extra_body={"temperature": 0.5})
    assert err.value.status_code == 400
    assert err.value.body["error"]["type"] == "invalid_request_error"
    assert sims["first-anthropic"].hits() == 1
    assert sims["second-openai"].hits() == 0


def test_all_targets_down_is_overloaded(client, sims):
    sims["first-anthropic"].down(529)
    sims["second-openai"].down(503)
    with pytest.raises(anthropic.APIStatusError) as err:
        create(client)
    assert err.value.status_code == 529
    assert err.value.body["error"]["type"] == "overloaded_error"
    assert "first-anthropic/claude-sonnet-4-5" in err.value.message


def test_cut_after_first_token_raises_instead_of_ending_quietly(client, sims):
    sims["first-anthropic"].down()
    sims["second-openai"].fault(kind="cut", after=3)
    with pytest.raises(anthropic.APIError):
        with client.messages.stream(model="claude-route", max_tokens=200, messages=MESSAGES) as s:
            s.get_final_message()


def test_unknown_model_is_a_404_in_anthropic_shape(client):
    with pytest.raises(anthropic.NotFoundError) as err:
        client.messages.create(model="no-such-model", max_tokens=10, messages=MESSAGES)
    assert err.value.body["type"] == "error"
    assert err.value.body["error"]["type"] == "not_found_error"


def test_models_list_in_anthropic_shape(client):
    ids = {m.id for m in client.models.list()}
    assert {"gpt-route", "claude-route"} <= ids
