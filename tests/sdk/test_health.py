"""Health through the official SDKs: what one request teaches the gateway decides where the next one goes.

Each test starts its own gateway (its own health) with short cooldowns, in front of the session's simulators, and
judges by the simulators' hit counts, as the issue asks: a failing target gets no client request while its breaker is
open, then one trial at a time, and traffic when it has recovered; a silent target costs one request its timeout; a
lone 500 and a 429 with Retry-After: 1 are served by the same target on its second try.
"""

import time

import anthropic
import openai
import pytest

MESSAGES = [{"role": "user", "content": "hello health"}]


@pytest.fixture
def start(sims, serve):
    """Start a gateway over route "r" = [first, second], with `extra` TOML; stopped after the test."""
    def go(first, second, provider_extra="", extra=""):
        def provider(name, kind):
            return (f'[providers.{name}]\nkind = "{kind}"\nbase_url = "{sims[name].base_for(kind)}"\n{provider_extra}\n'
                    f'timeouts = {{ first_byte = "1s" }}\n\n')
        (a, akind), (b, bkind) = first, second
        model = lambda kind: "claude-sonnet-4-5" if kind == "anthropic" else "gpt-4.1"
        toml = (provider(a, akind) + provider(b, bkind)
                + f'[routes.r]\ntargets = ["{a}/{model(akind)}", "{b}/{model(bkind)}"]\n\n{extra}\n')
        return serve(toml)

    return go


def oai(url):
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)


def ask(client):
    raw = client.chat.completions.with_raw_response.create(model="r", messages=MESSAGES)
    assert raw.parse().choices[0].message.content.endswith("says: hello health")
    return raw.headers["x-nines-target"]


def test_an_open_breaker_keeps_the_sdk_off_a_failing_target_until_it_recovers(start, sims):
    url = start(("first-openai", "openai"), ("second-anthropic", "anthropic"), "retries = 0",
                '[health]\ncooldown = "1s"\ncooldown_max = "1s"\nramp = "0s"\n')
    client = oai(url)
    sims["first-openai"].down(503)
    served = [ask(client) for _ in range(10)]
    assert set(served) == {"second-anthropic/claude-sonnet-4-5"}
    assert sims["first-openai"].hits() == 3, "three failures open the breaker; no client request after"
    assert sims["second-anthropic"].hits() == 10

    time.sleep(1.3)  # the cooldown (1 s ± 20%) passes: exactly one trial, which fails
    assert ask(client) == "second-anthropic/claude-sonnet-4-5"
    assert sims["first-openai"].hits() == 4
    for _ in range(5):
        ask(client)
    assert sims["first-openai"].hits() == 4, "open again: no request until the next cooldown"

    sims["first-openai"].reset()  # recovered
    time.sleep(1.3)
    assert ask(client) == "first-openai/gpt-4.1", "the trial finds it recovered"
    assert [ask(client) for _ in range(5)] == ["first-openai/gpt-4.1"] * 5, "traffic is back"


def test_a_silent_target_costs_one_anthropic_sdk_request_its_timeout(start, sims):
    url = start(("first-anthropic", "anthropic"), ("second-openai", "openai"))
    client = anthropic.Anthropic(base_url=url, api_key="unused", max_retries=0)
    sims["first-anthropic"].fault(count=4294967295, kind="hang")

    def ask_anthropic():
        msg = client.messages.create(model="r", max_tokens=50, messages=MESSAGES)
        assert msg.content[0].text == "second-openai says: hello health"

    began = time.monotonic()
    ask_anthropic()
    assert time.monotonic() - began >= 1.0, "the first request waits out the 1 s timeout"
    began = time.monotonic()
    for _ in range(20):
        ask_anthropic()
    assert time.monotonic() - began < 1.0, "twenty requests in less than one timeout: none waited for it"
    assert sims["first-anthropic"].hits() == 1


@pytest.mark.parametrize("fault", [{"kind": "status", "status": 500},
                                   {"kind": "status", "status": 429, "retry_after": 1}], ids=["500", "429"])
def test_a_lone_failure_is_served_by_the_same_target_on_its_second_try(start, sims, fault):
    url = start(("first-openai", "openai"), ("second-anthropic", "anthropic"))
    sims["first-openai"].fault(**fault)
    raw = oai(url).chat.completions.with_raw_response.create(model="r", messages=MESSAGES)
    assert raw.headers["x-nines-target"] == "first-openai/gpt-4.1"
    assert raw.headers["x-nines-attempts"] == "2"
    assert (sims["first-openai"].hits(), sims["second-anthropic"].hits()) == (2, 0)
