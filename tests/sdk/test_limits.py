"""Per-key limits through the official SDKs: a 429 each SDK understands (its own error class, the provider-style
rate-limit headers), and an SDK left to its own retries backs off as told and gets through."""

import hashlib
import time

import anthropic
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors

KEY = "limited-key-0123456789"
MESSAGES = [{"role": "user", "content": "hello limits"}]


@pytest.fixture
def limited(sims, serve):
    def go(limits):
        digest = hashlib.sha256(KEY.encode()).hexdigest()
        toml = (f'[providers.p]\nkind = "openai"\nbase_url = "{sims["first-openai"].base_for("openai")}"\n\n'
                '[routes.r]\ntargets = ["p/gpt-4.1"]\n\n'
                f'[keys.limited]\nkey_sha256 = "{digest}"\nlimits = {{ {limits} }}\n')
        return serve(toml)
    return go


def test_openai_and_anthropic_sdks_get_their_own_rate_limit_errors(limited):
    url = limited("requests_per_minute = 2")
    oai = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
    for _ in range(2):
        oai.chat.completions.create(model="r", messages=MESSAGES)
    with pytest.raises(openai.RateLimitError) as e:
        oai.chat.completions.create(model="r", messages=MESSAGES)
    h = e.value.response.headers
    assert h["x-ratelimit-limit-requests"] == "2" and h["x-ratelimit-remaining-requests"] == "0"
    assert int(h["retry-after"]) >= 1
    assert "requests per minute" in str(e.value)

    ant = anthropic.Anthropic(base_url=url, api_key=KEY, max_retries=0)
    with pytest.raises(anthropic.RateLimitError) as e:
        ant.messages.create(model="r", max_tokens=50, messages=MESSAGES)
    h = e.value.response.headers
    assert h["anthropic-ratelimit-requests-limit"] == "2"
    assert h["anthropic-ratelimit-requests-remaining"] == "0"

    gem = genai.Client(api_key=KEY, http_options={"base_url": url, "retry_options": None})
    with pytest.raises(genai_errors.ClientError) as e:
        gem.models.generate_content(model="r", contents="hello limits")
    assert e.value.code == 429


def test_an_sdk_left_to_its_retries_backs_off_as_told_and_gets_through(limited, sims):
    # 60 a minute: a burst of 60, then one a second.
    url = limited("requests_per_minute = 60")
    fast = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=0)
    for _ in range(60):
        fast.chat.completions.create(model="r", messages=MESSAGES)
    before = sims["first-openai"].hits()
    patient = openai.OpenAI(base_url=url + "/v1", api_key=KEY, max_retries=3)
    t0 = time.monotonic()
    answer = patient.chat.completions.create(model="r", messages=MESSAGES)
    took = time.monotonic() - t0
    assert answer.choices[0].message.content.endswith("hello limits")
    # It waited about what nines said (retry-after-ms), not its own default backoff, and the provider saw one call.
    assert 0.3 <= took <= 3.0, took
    assert sims["first-openai"].hits() == before + 1
