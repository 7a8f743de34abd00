"""Traces over OTLP (docs/observability.md): a receiver built on the `opentelemetry-proto` package's own messages
gets, for one request that failed over, ONE request span (SERVER, the child of the client's `traceparent`) and its
two attempt spans (CLIENT, children of the request span), with the GenAI semantic conventions' attributes
(`gen_ai.provider.name`, never the old `gen_ai.system`) and the request id the client saw in `x-request-id`.

The receiver is a plain `http.server` on 127.0.0.1:0 that decodes each protobuf `ExportTraceServiceRequest`. The gateway
batches its exports; `OTEL_BSP_SCHEDULE_DELAY` (the standard variable) makes it send them within 100 ms here.
"""

import http.server
import threading

import openai
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CLIENT_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CLIENT_SPAN}-01"


class Receiver:
    """An OTLP/HTTP traces receiver: every span it was sent, with its resource's attributes."""

    def __init__(self):
        self.spans = []  # (resource attributes, span)
        self.changed = threading.Condition()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                ok = self.path == "/v1/traces" and self.headers.get("content-type") == "application/x-protobuf"
                if ok:
                    req = ExportTraceServiceRequest.FromString(body)
                    with receiver.changed:
                        for rs in req.resource_spans:
                            resource = attributes(rs.resource.attributes)
                            for ss in rs.scope_spans:
                                receiver.spans.extend((resource, s) for s in ss.spans)
                        receiver.changed.notify_all()
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if ok else 400)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, trace_id, count, timeout=20):
        """The spans of `trace_id`, once at least `count` of them have come (or the timeout passed)."""
        def mine():
            return [(r, s) for r, s in self.spans if s.trace_id == trace_id]
        with self.changed:
            self.changed.wait_for(lambda: len(mine()) >= count, timeout=timeout)
            return mine()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def attributes(kvs):
    """OTLP key-values as a dict of plain Python values."""
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in kvs}


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_a_failover_is_one_request_span_with_its_attempt_spans(sims, serve, receiver, monkeypatch):
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    first, second = sims["first-openai"], sims["second-anthropic"]
    url = serve(
        f'[providers.first-openai]\nkind = "openai"\nbase_url = "{first.base_for("openai")}"\nretries = 0\n\n'
        f'[providers.second-anthropic]\nkind = "anthropic"\nbase_url = "{second.base_for("anthropic")}"\n\n'
        '[routes.r]\ntargets = ["first-openai/gpt-4.1", "second-anthropic/claude-sonnet-4-5"]\n\n'
        f'[traces]\notlp_endpoint = "{receiver.url}"\nservice_name = "nines-under-test"\n'
    )
    first.fault(kind="status", status=503)
    client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(
        model="r", messages=[{"role": "user", "content": "hello traces"}], extra_headers={"traceparent": TRACEPARENT})
    assert raw.parse().choices[0].message.content == "second-anthropic says: hello traces"
    assert raw.headers["x-nines-target"] == "second-anthropic/claude-sonnet-4-5"

    got = receiver.wait_for(bytes.fromhex(TRACE_ID), 3)
    assert {r["service.name"] for r, _ in got} == {"nines-under-test"}
    spans = [s for _, s in got]
    requests = [s for s in spans if s.kind == Span.SPAN_KIND_SERVER]
    attempts = [s for s in spans if s.kind == Span.SPAN_KIND_CLIENT]
    assert (len(requests), len(attempts), len(spans)) == (1, 2, 3), [s.name for s in spans]

    request = requests[0]
    assert request.parent_span_id == bytes.fromhex(CLIENT_SPAN), "the request span is the client's span's child"
    assert request.name == "chat r"
    attrs = attributes(request.attributes)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "anthropic"
    assert "gen_ai.system" not in attrs
    assert attrs["gen_ai.request.model"] == "r"
    assert attrs["gen_ai.response.model"] == "claude-sonnet-4-5"
    assert attrs["gen_ai.usage.input_tokens"] > 0
    assert attrs["gen_ai.usage.output_tokens"] > 0
    assert attrs["nines.request.id"] == raw.headers["x-request-id"]
    assert (attrs["nines.ending"], attrs["nines.attempts"], attrs["nines.failovers"]) == ("saved", 2, 1)
    assert attrs["nines.resumed"] is False
    assert attrs["http.route"] == "/v1/chat/completions"
    assert request.status.code != Status.STATUS_CODE_ERROR, "a saved request is no error"

    attempts.sort(key=lambda s: s.start_time_unix_nano)
    for a in attempts:
        assert a.parent_span_id == request.span_id, "attempt spans are the request span's children"
        assert request.start_time_unix_nano <= a.start_time_unix_nano <= a.end_time_unix_nano
        assert a.end_time_unix_nano <= request.end_time_unix_nano
    failed, served = (attributes(a.attributes) for a in attempts)
    assert attempts[0].name == "chat gpt-4.1"
    assert failed["gen_ai.provider.name"] == "openai"
    assert failed["gen_ai.request.model"] == "gpt-4.1"
    assert failed["error.type"] and failed["http.response.status_code"] == 503
    assert failed["nines.attempt"] == 1 and failed["nines.target"] == "first-openai/gpt-4.1"
    assert attempts[0].status.code == Status.STATUS_CODE_ERROR
    assert attempts[1].name == "chat claude-sonnet-4-5"
    assert "error.type" not in served
    assert served["gen_ai.provider.name"] == "anthropic"
    assert served["gen_ai.response.model"] == "claude-sonnet-4-5"
    assert served["gen_ai.usage.input_tokens"] == attrs["gen_ai.usage.input_tokens"]
    assert served["nines.attempt"] == 2 and served["nines.provider"] == "second-anthropic"
    assert served["server.address"] == "127.0.0.1"
