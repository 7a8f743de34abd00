"""`client.embeddings.create` (OpenAI SDK, which asks for base64 by default) and `client.messages.count_tokens`
(Anthropic SDK) through the gateway."""

import anthropic
import openai
import pytest


@pytest.fixture
def oai(gateway):
    return openai.OpenAI(base_url=gateway + "/v1", api_key="unused", max_retries=0)


def test_embeddings_agree_across_provider_kinds(oai, sims):
    texts = ["hello world", "another text"]
    direct = oai.embeddings.create(model="second-openai/text-embedding-3-small", input=texts)
    via_gemini = oai.embeddings.create(model="gemini/text-embedding-004", input=texts)
    floats = oai.embeddings.create(model="gemini/text-embedding-004", input=texts, encoding_format="float")
    assert len(direct.data) == 2 and len(direct.data[0].embedding) == 8
    assert [d.embedding for d in via_gemini.data] == [d.embedding for d in direct.data]
    assert [d.embedding for d in floats.data] == [d.embedding for d in direct.data]
    assert via_gemini.usage.prompt_tokens > 0


def test_count_tokens_through_the_anthropic_sdk(gateway, sims):
    client = anthropic.Anthropic(base_url=gateway, api_key="unused", max_retries=0)
    sims["first-anthropic"].down(529)
    raw = client.messages.with_raw_response.count_tokens(
        model="claude-route", system="be brief", messages=[{"role": "user", "content": "one two three four"}])
    assert raw.parse().input_tokens > 0
    # claude-route's second target speaks OpenAI: no exact count there, so the answer is a marked estimate.
    assert raw.headers["x-nines-token-count"] == "estimate"
    sims["first-anthropic"].reset()
    exact = client.messages.with_raw_response.count_tokens(
        model="claude-route", system="be brief", messages=[{"role": "user", "content": "one two three four"}])
    assert exact.parse().input_tokens == 6
    assert "x-nines-token-count" not in exact.headers
