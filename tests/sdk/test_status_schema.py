"""`/status.json` against its documented schema (docs/status.schema.json), after outages driven through the official
OpenAI SDK: a provider overloaded until its breaker opens, and a provider answering 429 without its headers having
predicted it. Each on its own gateway."""

import json
import pathlib
import urllib.request

import jsonschema
import openai

SCHEMA = json.loads((pathlib.Path(__file__).parents[2] / "docs" / "status.schema.json").read_text())


def status(url):
    with urllib.request.urlopen(url + "/status.json", timeout=10) as resp:
        return json.loads(resp.read())


def gateway(sims, serve, extra):
    def provider(name, kind):
        return f'[providers.{name}]\nkind = "{kind}"\nbase_url = "{sims[name].base_for(kind)}"\nretries = 0\n\n'
    toml = (provider("first-openai", "openai") + provider("second-anthropic", "anthropic")
            + '[routes.r]\ntargets = ["first-openai/gpt-4.1", "second-anthropic/claude-sonnet-4-5"]\n\n'
            + '[status]\npublic = true\n' + extra)
    return serve(toml)


def ask(url, n):
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    for _ in range(n):
        client.chat.completions.create(model="r", messages=[{"role": "user", "content": "hi"}])


def test_an_overload_report_is_valid_against_the_schema(sims, serve):
    url = gateway(sims, serve, "")
    jsonschema.validate(status(url), SCHEMA)  # no traffic: every availability null
    sims["first-openai"].down(529)
    ask(url, 6)
    report = status(url)
    jsonschema.validate(report, SCHEMA)
    [incident] = report["incidents"]
    assert incident["opened_by"] == "breaker" and incident["kinds"]["overload"]["statuses"] == {"529": 3}
    assert report["gateway"]["availability"][0]["availability"] == 1.0
    assert report["gateway"]["saved_24h"] == 6


def test_an_unpredicted_rate_limit_names_itself_in_the_incident(sims, serve):
    url = gateway(sims, serve, '[status.incidents]\nwindow = 4\nmin_attempts = 4\nfailure_rate = 0.25\n'
                               '[health]\nrate_limit_cooldown = "1ms"\n')
    ask(url, 3)
    sims["first-openai"].fault(count=1, kind="status", status=429)
    ask(url, 1)
    report = status(url)
    jsonschema.validate(report, SCHEMA)
    [incident] = report["incidents"]
    assert incident["opened_by"] == "failure_rate"
    assert incident["kinds"]["rate_limit"]["statuses"] == {"429": 1}
    assert incident["rate_limit"]["predicted"] is False, incident
    assert incident["rate_limit"]["limit"] in ("requests", "tokens", "unknown"), incident
