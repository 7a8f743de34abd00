"""A real Prometheus (Debian's `prometheus`) scrapes the gateway's /metrics, behind the admin key, and PromQL answers
with exactly what the test sent; the Grafana dashboard's every query is accepted by that Prometheus and reads only
metrics the gateway exposes.

One gateway and one Prometheus for the module: route "chat" = [first (Anthropic, 529 forever), second (OpenAI)],
`retries = 0`, a 10-minute breaker cooldown. Prometheus (scrape interval 1 s, its own port and storage in a temporary
directory) scrapes once before any request, so the counters start at 0 in its storage and rates over the traffic
are real numbers; then the OpenAI SDK sends N requests, half of them streamed. Three overloads open first's breaker:
the first three requests are saved by a failover, the other seven go straight to second and are plain "served".

Skipped when /usr/bin/prometheus is missing, unless NINES_REQUIRE_PROMETHEUS is set (CI sets it; .ci/run installs
the package): then a missing binary fails.
"""

import json
import math
import os
import pathlib
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import openai
import pytest

from conftest import ROOT, Sim, _start

PROMETHEUS = "/usr/bin/prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "nines-dashboard.json"
ADMIN_KEY = "prometheus-test-admin-key"
N = 10
SAVED = 3  # three overloads in a row open first's breaker; each of those three requests failed over to second
ROUTE = "chat"
FIRST, SECOND = "first/claude-sonnet-4-5", "second/gpt-4.1"
MESSAGES = [{"role": "user", "content": "hello prometheus"}]


def _prometheus_binary():
    if os.path.exists(PROMETHEUS):
        return PROMETHEUS
    found = shutil.which("prometheus")
    if found:
        return found
    if os.environ.get("NINES_REQUIRE_PROMETHEUS"):
        pytest.fail(f"NINES_REQUIRE_PROMETHEUS is set but {PROMETHEUS} is missing (apt-get install prometheus)")
    pytest.skip(f"{PROMETHEUS} is missing (Debian's `prometheus` package); set NINES_REQUIRE_PROMETHEUS to fail instead")


def _get(url, headers=None, timeout=5):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.status, resp.read().decode()


def _until(what, check, timeout=30.0, every=0.2):
    """Poll `check` until it returns something truthy, for at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, urllib.error.URLError, ValueError) as e:  # not up yet
            last = e
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


class Prometheus:
    """A Prometheus server process on 127.0.0.1 at a port it chose, and its HTTP API."""

    def __init__(self, binary, workdir, gateway_hostport):
        self.dir = pathlib.Path(workdir)
        config = {  # YAML is a superset of JSON
            "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": "nines",
                    "authorization": {"type": "Bearer", "credentials": ADMIN_KEY},
                    "static_configs": [{"targets": [gateway_hostport]}],
                },
                # The same target without the key: the gateway refuses it, and Prometheus says so with up == 0.
                {"job_name": "nines-without-key", "static_configs": [{"targets": [gateway_hostport]}]},
            ],
        }
        (self.dir / "prometheus.yml").write_text(json.dumps(config, indent=2))
        self.log_path = self.dir / "prometheus.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={self.dir / 'prometheus.yml'}", f"--storage.tsdb.path={self.dir / 'data'}",
             "--web.listen-address=127.0.0.1:0", "--storage.tsdb.retention.time=1h"],
            stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.dir,
        )
        try:
            # "Listening on" address=127.0.0.1:PORT: the port the kernel gave it for :0.
            port = _until("prometheus to report its port", self._port, timeout=30)
            self.url = f"http://127.0.0.1:{port}"
            _until("prometheus to be ready", lambda: _get(self.url + "/-/ready")[0] == 200, timeout=30)
        except BaseException:
            self.stop()
            raise

    def _port(self):
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
        m = re.search(r'msg="Listening on" address=127\.0\.0\.1:(\d+)', self.log_path.read_text())
        return m and int(m.group(1))

    def api(self, path, **params):
        status, body = _get(f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params, doseq=True)}")
        return json.loads(body)

    def query(self, promql):
        """An instant query's result vector (or scalar), asserting that Prometheus accepted it."""
        try:
            answer = self.api("query", query=promql)
        except urllib.error.HTTPError as e:
            raise AssertionError(f"prometheus refused {promql!r}: {e.read().decode()}") from None
        assert answer["status"] == "success", (promql, answer)
        return answer["data"]

    def value(self, promql):
        """The single number a query answers (None when its vector is empty)."""
        data = self.query(promql)
        if data["resultType"] == "scalar":
            return float(data["result"][1])
        result = data["result"]
        assert len(result) <= 1, (promql, result)
        return float(result[0]["value"][1]) if result else None

    def by(self, promql, label):
        return {r["metric"].get(label, ""): float(r["value"][1]) for r in self.query(promql)["result"]}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


def _chat(client, stream):
    if not stream:
        r = client.chat.completions.create(model=ROUTE, messages=MESSAGES)
        return r.choices[0].message.content, r.usage
    text, usage = "", None
    for chunk in client.chat.completions.create(model=ROUTE, messages=MESSAGES, stream=True,
                                                stream_options={"include_usage": True}):
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
        usage = chunk.usage or usage
    return text, usage


@pytest.fixture(scope="module")
def scraped(tmp_path_factory):
    """The gateway after N requests, its scraped /metrics text, and the Prometheus that scraped it."""
    binary = _prometheus_binary()
    sims = [Sim("prom-first"), Sim("prom-second")]
    gateway = prometheus = None
    try:
        first, second = sims
        toml = (
            f'[providers.first]\nkind = "anthropic"\nbase_url = "{first.base_for("anthropic")}"\nretries = 0\n\n'
            f'[providers.second]\nkind = "openai"\nbase_url = "{second.base_for("openai")}"\nretries = 0\n\n'
            f'[routes.{ROUTE}]\ntargets = ["{FIRST}", "{SECOND}"]\n\n'
            '[health]\ncooldown = "10m"\ncooldown_max = "10m"\nramp = "0s"\n\n'
            '[auth]\nadmin_key_env = "NINES_TEST_ADMIN_KEY"\n'
        )
        work = tmp_path_factory.mktemp("prometheus")
        (work / "nines.toml").write_text(toml)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("NINES_TEST_ADMIN_KEY", ADMIN_KEY)
            gateway, url = _start(["serve", "--config", str(work / "nines.toml"), "--listen", "127.0.0.1:0"],
                                  "nines listening on")

        # The metrics need the admin key.
        with pytest.raises(urllib.error.HTTPError) as refused:
            _get(url + "/metrics")
        assert refused.value.code == 401

        prometheus = Prometheus(binary, work, urllib.parse.urlsplit(url).netloc)
        # A first scrape before any request: every counter is 0 in Prometheus' storage.
        _until("the first scrape", lambda: prometheus.value(f'sum(nines_requests_total{{route="{ROUTE}"}})') == 0)

        first.down(529)
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
        usages = []
        for i in range(N):
            text, usage = _chat(client, stream=i % 2 == 1)
            assert text == "prom-second says: hello prometheus", text
            usages.append(usage)
        assert first.hits() == SAVED, "three overloads open the breaker; no request after"
        assert second.hits() == N

        total = f'sum(nines_requests_total{{route="{ROUTE}"}})'
        _until(f"{total} == {N}", lambda: prometheus.value(total) == N, timeout=30)
        _, text = _get(url + "/metrics", {"authorization": f"Bearer {ADMIN_KEY}"})
        yield {"prometheus": prometheus, "metrics": text, "usages": usages}
    finally:
        if prometheus:
            prometheus.stop()
        if gateway:
            gateway.terminate()
            gateway.wait(timeout=10)
        for s in sims:
            s.proc.terminate()
            s.proc.wait(timeout=10)


def test_promql_counts_exactly_what_was_sent(scraped):
    p = scraped["prometheus"]
    assert p.value('up{job="nines"}') == 1, "scraped with the admin key"
    assert p.value('up{job="nines-without-key"}') == 0, "refused without it"

    endings = p.by(f'nines_requests_total{{route="{ROUTE}"}}', "ending")
    assert endings == {"served": N - SAVED, "saved": SAVED, "resumed": 0, "failed": 0, "broken_stream": 0,
                       "refused": 0, "cancelled": 0}
    assert p.value(f'nines_failovers_total{{route="{ROUTE}"}}') == SAVED
    assert p.value(f'nines_retries_total{{route="{ROUTE}"}}') == 0
    assert p.value(f'nines_hedges_total{{route="{ROUTE}"}}') == 0
    assert p.by(f'nines_resumes_total{{route="{ROUTE}"}}', "outcome") == {"resumed": 0, "not_resumed": 0}

    assert p.value(f'nines_attempts_total{{target="{FIRST}",outcome="failure",error_kind="overload"}}') == SAVED
    assert p.by('sum by (target) (nines_attempts_total{outcome="failure"})', "target") == {FIRST: SAVED, SECOND: 0}
    # Every error kind's series was there, at 0, before the first failure: rate() sees all three overloads.
    assert p.value(f'increase(nines_attempts_total{{target="{FIRST}",error_kind="overload"}}[1h])') >= SAVED
    assert p.by('sum by (target) (nines_attempts_total{outcome="success"})', "target") == {FIRST: 0, SECOND: N}
    assert p.value('sum(nines_attempts_total{outcome=~"client_error|abandoned"})') == 0
    # Availability as nines saw the targets, and as the clients saw the gateway (every request answered).
    assert p.by('sum by (target) (nines_attempts_total{outcome="success"}) / '
                'sum by (target) (nines_attempts_total{outcome=~"success|failure"})', "target") == {FIRST: 0, SECOND: 1}
    assert p.value(f'1 - sum(nines_requests_total{{route="{ROUTE}",ending=~"failed|broken_stream"}}) / '
                   f'sum(nines_requests_total{{route="{ROUTE}",ending!~"refused|cancelled"}})') == 1

    assert p.by("nines_breaker_state", "target") == {FIRST: 2, SECOND: 0}, "first's breaker is open"
    assert p.value("nines_in_flight_requests") == 0

    # The tokens the client was told of are the tokens counted.
    sent_in = sum(u.prompt_tokens for u in scraped["usages"])
    sent_out = sum(u.completion_tokens for u in scraped["usages"])
    assert sent_in > 0 and sent_out > 0
    assert p.by(f'nines_tokens_total{{target="{SECOND}"}}', "direction") == {"input": sent_in, "output": sent_out}
    assert p.value(f'sum(nines_tokens_total{{target="{FIRST}"}})') == 0
    assert p.by('gen_ai_client_token_usage_count{gen_ai_request_model="gpt-4.1"}', "gen_ai_token_type") == {
        "input": N, "output": N}
    assert p.by('gen_ai_client_token_usage_sum{gen_ai_request_model="gpt-4.1"}', "gen_ai_token_type") == {
        "input": sent_in, "output": sent_out}

    # Durations: every request once, each stream's first token once, each attempt once (failures by error type).
    assert p.value(f'sum(gen_ai_server_request_duration_seconds_count{{gen_ai_request_model="{ROUTE}"}})') == N
    assert p.value(f'gen_ai_server_time_to_first_token_seconds_count{{gen_ai_request_model="{ROUTE}"}}') == N // 2
    assert p.by('sum by (error_type) (gen_ai_client_operation_duration_seconds_count)', "error_type") == {
        "": N, "overload": SAVED}
    assert p.by('nines_attempt_time_to_first_token_seconds_count', "target") == {FIRST: 0, SECOND: N // 2}

    # Quantiles over the traffic's rates: numbers, within the buckets' range.
    for metric in ["gen_ai_server_request_duration_seconds", "gen_ai_server_time_to_first_token_seconds"]:
        for q in (0.5, 0.95):
            v = p.value(f'histogram_quantile({q}, sum by (le) (rate({metric}_bucket'
                        f'{{gen_ai_request_model="{ROUTE}"}}[1m])))')
            assert v is not None and math.isfinite(v) and 0 < v <= 160, (metric, q, v)
    assert p.value(f'sum(rate(nines_requests_total{{route="{ROUTE}"}}[1m]))') > 0


# ── The Grafana dashboard ─────────────────────────────────────────────────────────────────────────────────────────

KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset",
            "inf", "nan"}


def metric_names(expr):
    """The metric names a PromQL expression reads: what is left after strings, label matchers, ranges, grouping
    clauses, functions, keywords and numbers."""
    e = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', '""', expr)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\boffset\s+\w+", " ", e)
    names = set()
    for m in re.finditer(r"(?<![\w.])([A-Za-z_:][\w:]*)(\s*\()?", e):
        name, call = m.group(1), m.group(2)
        if not call and name.lower() not in KEYWORDS:
            names.add(name)
    return names


def test_metric_names_are_read_from_promql():
    assert metric_names('1 - sum by (route) (rate(a_total{ending=~"failed|x"}[5m])) / '
                        'sum without (le) (increase(b_bucket{x="y {z}"}[$__range] offset 1h))') == {"a_total", "b_bucket"}
    assert metric_names("histogram_quantile(0.5, sum by (le) (rate(c_bucket[1m]))) and on(x) d") == {"c_bucket", "d"}


def panels(dashboard):
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row keeps its panels


def exposed(metrics_text):
    """Sample names and family names (`# TYPE`) of an exposition."""
    samples = {re.split(r"[{ ]", line, maxsplit=1)[0] for line in metrics_text.splitlines()
               if line and not line.startswith("#")}
    families = {line.split()[2] for line in metrics_text.splitlines() if line.startswith("# TYPE ")}
    return samples, families


def family_of(name, families):
    for suffix in ("_bucket", "_sum", "_count", "_total", ""):
        if name.endswith(suffix) and name[: len(name) - len(suffix)] in families:
            return name[: len(name) - len(suffix)]
    return None


def test_the_grafana_dashboard_reads_only_real_metrics_with_queries_prometheus_accepts(scraped):
    p = scraped["prometheus"]
    dashboard = json.loads(DASHBOARD.read_text())
    samples, families = exposed(scraped["metrics"])

    assert dashboard["title"] and dashboard["uid"] and 36 <= dashboard["schemaVersion"] <= 41
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource" and variables["DS_PROMETHEUS"]["query"] == "prometheus"
    # The template variables' label_values(), asked of the real Prometheus.
    for name, metric, label, want in [("route", "nines_requests_total", "route", {ROUTE}),
                                      ("provider", "nines_attempts_total", "provider", {"first", "second"})]:
        v = variables[name]
        assert v["type"] == "query" and v["query"]["query"] == f"label_values({metric}, {label})", v
        assert v["includeAll"] and v["multi"] and v["allValue"] == ".*"
        assert want <= set(p.api(f"label/{label}/values", **{"match[]": metric})["data"])

    ids, used, titles = set(), set(), []
    for panel in panels(dashboard):
        assert panel["id"] not in ids, f"panel id {panel['id']} twice"
        ids.add(panel["id"])
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            continue
        titles.append(panel["title"])
        assert panel["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"] and target["refId"], panel["title"]
            expr = (target["expr"].replace("$__rate_interval", "1m").replace("$__range", "1h")
                    .replace("$route", ".*").replace("$provider", ".*"))
            assert "$" not in expr, (panel["title"], expr)
            where = f"{panel['title']!r}: {expr}"
            result = p.query(expr)["result"]  # Prometheus accepts it...
            assert result, f"no series for {where}"  # ...and it finds series (a label or value misspelt finds none)
            names = metric_names(expr)
            assert names, where
            for name in names:
                assert name in samples, f"{name} is not in the gateway's /metrics ({where})"
                used.add(family_of(name, families))

    assert used == families, f"families no panel shows: {families - used}"
    required = {r["id"] for r in dashboard["__requires"] if r["type"] == "panel"}
    assert {x["type"] for x in panels(dashboard) if x["type"] != "row"} == required
    assert len(titles) == len(set(titles)), "two panels with the same title"

    # The breaker panel names the gauge's states as metrics.rs documents them.
    breaker = next(x for x in panels(dashboard) if "nines_breaker_state" in json.dumps(x.get("targets", [])))
    options = {k: v["text"] for m in breaker["fieldConfig"]["defaults"]["mappings"] if m["type"] == "value"
               for k, v in m["options"].items()}
    assert options == {"0": "closed", "1": "half-open", "2": "open", "3": "down", "4": "rate-limited"}
