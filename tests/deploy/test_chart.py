"""The Helm chart (deploy/helm/nines), checked offline: `helm lint` and `helm template` for several value sets, every
manifest validated against Kubernetes' own schemas (kubernetes-validate, strict, one fixed Kubernetes version), the
ServiceMonitor (a CRD those schemas do not know) by hand, and the behaviour that matters asserted on what was
rendered: probes, the shutdown sequence (preStop, [server] drain, grace period), the security context, the
autoscaler's metric against the gauge nines really exports, the configuration accepted by `nines check`, Redis in
[state], the checksum that rolls pods when the configuration changes.

    NINES_HELM=/path/to/helm NINES_BIN=/path/to/nines .venv/bin/python -m pytest tests/deploy

Without a helm binary (NINES_HELM, `helm` on PATH, or .tools/helm from scripts/fetch-helm) the tests skip, or fail
under NINES_REQUIRE_HELM=1. Without NINES_BIN, only the `nines check` assertion skips.
"""

import base64
import copy
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "nines"
METRICS_RS = ROOT / "crates" / "gateway" / "src" / "record" / "metrics.rs"
DOCKERFILE = ROOT / "Dockerfile"
K8S_VERSION = "1.33.0"
RELEASE = "rel"
NAMESPACE = "llm"
FULLNAME = "rel-nines"
CONFIG_PATH = "/etc/nines/nines.toml"

# The value sets rendered and checked. Each is written to a file and passed with -f, as a user would.
VALUE_SETS = {
    "defaults": {},
    "redis-enabled": {"redis": {"enabled": True}},
    "redis-url": {"redis": {"url": "redis://redis.shared.example:6379/2"}},
    "monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "autoscaling": {"enabled": True, "minReplicas": 3, "targetCPUUtilizationPercentage": 70},
        "secrets": {"values": {"OPENAI_API_KEY": "sk-test", "NINES_ADMIN_KEY": "admin-test"}},
    },
    "existing-secret": {"secrets": {"existingSecret": "nines-keys"}},
    "chart-secret": {
        "secrets": {"values": {"OPENAI_API_KEY": "sk-test", "NINES_KEYS": "k1,k2"}},
        "probes": {"startup": {"enabled": True}},
        "server": {"max_in_flight": 2048, "queue_default": "3s"},
        "state": {"budget": "80ms", "prefix": "fleet-a"},
        "redis": {"enabled": True},
    },
    "single": {"replicaCount": 1, "topologySpread": {"enabled": False}, "preStop": {"sleepSeconds": 0}},
}


def find_helm():
    for candidate in (shutil.which("helm"), str(ROOT / ".tools" / "helm")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="session")
def helm():
    named = os.environ.get("NINES_HELM")
    if named:
        # Named explicitly: a wrong path is an error, never a reason to skip or to use another helm.
        assert os.access(named, os.X_OK), f"NINES_HELM={named} is not an executable"
        return named
    found = find_helm()
    if found is None:
        message = "no helm binary (set NINES_HELM, or run scripts/fetch-helm)"
        if os.environ.get("NINES_REQUIRE_HELM"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def write_values(tmp_path, values, name="values.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(values))
    return path


def helm_run(helm, *args, check=True):
    proc = subprocess.run([helm, *args], capture_output=True, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, f"helm {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def render(helm, tmp_path, values):
    """Every manifest `helm template` renders for these values, parsed."""
    path = write_values(tmp_path, values, f"values-{len(list(tmp_path.iterdir()))}.yaml")
    out = helm_run(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(path)).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def render_fails(helm, tmp_path, values):
    path = write_values(tmp_path, values, "bad-values.yaml")
    proc = helm_run(helm, "template", RELEASE, str(CHART), "--namespace", NAMESPACE, "-f", str(path), check=False)
    assert proc.returncode != 0, f"helm template accepted {values}:\n{proc.stdout}"
    return proc.stderr


def one(docs, kind, name=FULLNAME):
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {[(d['kind'], d['metadata']['name']) for d in docs]}"
    return found[0]


def kinds(docs):
    return sorted((d["kind"], d["metadata"]["name"]) for d in docs)


def nines_container(docs):
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = [c for c in pod["containers"] if c["name"] == "nines"]
    return pod, container


def rendered_toml_text(docs):
    return one(docs, "ConfigMap")["data"]["nines.toml"]


def rendered_toml(docs):
    return tomllib.loads(rendered_toml_text(docs))


def seconds(duration):
    m = re.fullmatch(r"(\d+)s", duration)
    assert m, f"{duration!r} is not a whole number of seconds"
    return int(m.group(1))


def labels_match(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


# ── Lint and schemas ─────────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("name", VALUE_SETS)
def test_helm_lint_is_clean(helm, tmp_path, name):
    path = write_values(tmp_path, VALUE_SETS[name])
    helm_run(helm, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, "-f", str(path))


def check_service_monitor(sm, docs):
    """The Prometheus Operator's CRD is not in Kubernetes' schemas: its required fields and references by hand."""
    assert sm["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(sm) <= {"apiVersion", "kind", "metadata", "spec"}
    spec = sm["spec"]
    assert set(spec) <= {"selector", "namespaceSelector", "endpoints", "jobLabel", "targetLabels", "podTargetLabels"}
    selector = spec["selector"]["matchLabels"]
    assert spec["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    services = [d for d in docs if d["kind"] == "Service"]
    selected = [s for s in services if labels_match(selector, s["metadata"]["labels"])]
    assert [s["metadata"]["name"] for s in selected] == [FULLNAME], "it must select nines' Service, not Redis's"
    port_names = {p["name"] for p in selected[0]["spec"]["ports"]}
    assert spec["endpoints"], "endpoints is required"
    for ep in spec["endpoints"]:
        assert ep["port"] in port_names
        assert ep["path"] == "/metrics"
        assert ep.get("scheme", "http") in ("http", "https")
        for field in ("interval", "scrapeTimeout"):
            assert re.fullmatch(r"\d+(ms|s|m|h)", ep[field]), f"{field} is a Prometheus duration"
        if "authorization" in ep:
            auth = ep["authorization"]
            assert auth["type"] == "Bearer"
            assert set(auth["credentials"]) == {"name", "key"}


@pytest.mark.parametrize("name", VALUE_SETS)
def test_every_manifest_is_valid_kubernetes(helm, tmp_path, name):
    docs = render(helm, tmp_path, VALUE_SETS[name])
    assert docs
    for doc in docs:
        if doc["kind"] == "ServiceMonitor":
            check_service_monitor(doc, docs)
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{doc['kind']} {doc['metadata']['name']} is not valid Kubernetes {K8S_VERSION}: {e}")


def test_what_each_value_set_renders(helm, tmp_path):
    base = [
        ("ConfigMap", FULLNAME),
        ("Deployment", FULLNAME),
        ("PodDisruptionBudget", FULLNAME),
        ("Service", FULLNAME),
        ("ServiceAccount", FULLNAME),
    ]
    redis = [("Deployment", "rel-nines-redis"), ("NetworkPolicy", "rel-nines-redis"), ("Service", "rel-nines-redis")]
    assert kinds(render(helm, tmp_path, {})) == sorted(base)
    assert kinds(render(helm, tmp_path, VALUE_SETS["redis-enabled"])) == sorted(base + redis)
    assert kinds(render(helm, tmp_path, VALUE_SETS["redis-url"])) == sorted(base)
    monitoring = [("HorizontalPodAutoscaler", FULLNAME), ("Secret", FULLNAME), ("ServiceMonitor", FULLNAME)]
    assert kinds(render(helm, tmp_path, VALUE_SETS["monitoring"])) == sorted(base + monitoring)
    # A budget of one pod out of one would block every node drain: none with a single replica.
    single = [k for k in base if k[0] != "PodDisruptionBudget"]
    assert kinds(render(helm, tmp_path, VALUE_SETS["single"])) == sorted(single)


# ── The pod ──────────────────────────────────────────────────────────────────────────────────────────────────────


def test_probes_and_port(helm, tmp_path):
    docs = render(helm, tmp_path, {})
    _, c = nines_container(docs)
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert "startupProbe" not in c
    (port,) = c["ports"]
    assert port["name"] == "http"
    # nines listens, on every interface, on the port the probes and the Service use.
    assert rendered_toml(docs)["listen"] == f"0.0.0.0:{port['containerPort']}"
    svc = one(docs, "Service")
    assert svc["spec"]["type"] == "ClusterIP"
    assert [(p["name"], p["targetPort"]) for p in svc["spec"]["ports"]] == [("http", "http")]
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels_match(svc["spec"]["selector"], pod_labels)
    assert c["args"] == ["serve", "--config", CONFIG_PATH, "--log-format", "json"]

    _, c = nines_container(render(helm, tmp_path, VALUE_SETS["chart-secret"]))
    assert c["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}

    docs = render(helm, tmp_path, {"port": 8080, "service": {"port": 80}})
    _, c = nines_container(docs)
    assert c["ports"][0]["containerPort"] == 8080
    assert rendered_toml(docs)["listen"] == "0.0.0.0:8080"
    assert one(docs, "Service")["spec"]["ports"][0]["port"] == 80


@pytest.mark.parametrize(
    ("values", "pre_stop", "drain"),
    [({}, 5, 30), ({"drainSeconds": 90, "preStop": {"sleepSeconds": 12}}, 12, 90), (VALUE_SETS["single"], 0, 30)],
)
def test_shutdown_sequence(helm, tmp_path, values, pre_stop, drain):
    docs = render(helm, tmp_path, values)
    pod, c = nines_container(docs)
    if pre_stop:
        # The native sleep action (the image has no shell), not an exec of `sleep`.
        assert c["lifecycle"]["preStop"] == {"sleep": {"seconds": pre_stop}}
    else:
        assert "lifecycle" not in c
    # drainSeconds is what nines itself waits: [server] drain in the rendered configuration.
    assert seconds(rendered_toml(docs)["server"]["drain"]) == drain
    # SIGKILL only after the preStop sleep and the whole drain.
    assert pod["terminationGracePeriodSeconds"] > pre_stop + drain


def test_security_context(helm, tmp_path):
    docs = render(helm, tmp_path, VALUE_SETS["redis-enabled"])
    pod, c = nines_container(docs)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
    # The chart's Redis too.
    rpod = one(docs, "Deployment", "rel-nines-redis")["spec"]["template"]["spec"]
    assert rpod["securityContext"]["runAsNonRoot"] is True
    assert rpod["securityContext"]["runAsUser"] != 0
    (rc,) = rpod["containers"]
    assert rc["image"].startswith("redis:7-alpine")
    assert rc["securityContext"]["readOnlyRootFilesystem"] is True
    assert rc["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_image_and_chart_agree():
    """The Dockerfile and the chart name the same user, port and configuration path."""
    text = DOCKERFILE.read_text()
    final = text[text.rindex("\nFROM ") + 1 :]
    assert "gcr.io/distroless/cc-debian12:nonroot" in final.splitlines()[0]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    (user,) = re.findall(r"^USER (\d+)", final, re.M)
    assert int(user) == values["podSecurityContext"]["runAsUser"] == 65532
    (port,) = re.findall(r"^EXPOSE (\d+)", final, re.M)
    assert int(port) == values["port"]
    assert re.search(r'^ENTRYPOINT \["/usr/local/bin/nines"\]', final, re.M)
    assert CONFIG_PATH in re.search(r"^CMD (.*)$", final, re.M).group(1)


def test_state_paths_are_on_writable_volumes(helm, tmp_path):
    """The root filesystem is read-only: every file nines writes must be on an emptyDir."""
    docs = render(helm, tmp_path, {})
    pod, c = nines_container(docs)
    empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    writable = [m["mountPath"] for m in c["volumeMounts"] if m["name"] in empty_dirs and not m.get("readOnly")]
    assert "/var/lib/nines" in writable
    config = rendered_toml(docs)
    paths = [config.get("status", {}).get("path"), config.get("responses", {}).get("path")]
    paths.append(config.get("auth", {}).get("store"))
    paths = [p for p in paths if p]
    assert paths, "the default configuration keeps its history on the volume"
    for p in paths:
        assert any(p.startswith(w.rstrip("/") + "/") for w in writable), f"{p} is not on a writable volume"
    config_mount = [m for m in c["volumeMounts"] if m["mountPath"] == os.path.dirname(CONFIG_PATH)]
    assert config_mount and config_mount[0]["readOnly"] is True
    assert "subPath" not in config_mount[0], "a subPath mount never sees the ConfigMap change (no hot reload)"


def test_topology_spread(helm, tmp_path):
    docs = render(helm, tmp_path, {})
    pod, _ = nines_container(docs)
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    spread = {t["topologyKey"]: t for t in pod["topologySpreadConstraints"]}
    assert "topology.kubernetes.io/zone" in spread
    for t in spread.values():
        assert t["whenUnsatisfiable"] == "ScheduleAnyway"
        assert labels_match(t["labelSelector"]["matchLabels"], labels)
    pod, _ = nines_container(render(helm, tmp_path, VALUE_SETS["single"]))
    assert "topologySpreadConstraints" not in pod


# ── Secrets ──────────────────────────────────────────────────────────────────────────────────────────────────────


def test_existing_secret(helm, tmp_path):
    docs = render(helm, tmp_path, VALUE_SETS["existing-secret"])
    _, c = nines_container(docs)
    assert c["envFrom"] == [{"secretRef": {"name": "nines-keys"}}]
    assert not [d for d in docs if d["kind"] == "Secret"]
    assert "checksum/secret" not in one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]


def test_chart_made_secret(helm, tmp_path):
    docs = render(helm, tmp_path, VALUE_SETS["chart-secret"])
    _, c = nines_container(docs)
    secret = one(docs, "Secret")
    assert c["envFrom"] == [{"secretRef": {"name": secret["metadata"]["name"]}}]
    decoded = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert decoded == VALUE_SETS["chart-secret"]["secrets"]["values"]
    # Every *_env the configuration names can be satisfied by the Secret's keys (the ones set here are).
    config = rendered_toml(docs)
    assert config["providers"]["openai"]["api_key_env"] in decoded
    assert config["auth"]["keys_env"] in decoded
    # No Secret at all: no envFrom.
    _, c = nines_container(render(helm, tmp_path, {}))
    assert "envFrom" not in c


def test_a_changed_secret_rolls_the_pods(helm, tmp_path):
    def checksum(values):
        docs = render(helm, tmp_path, values)
        return one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/secret"]

    other = copy.deepcopy(VALUE_SETS["chart-secret"])
    other["secrets"]["values"]["OPENAI_API_KEY"] = "sk-rotated"
    assert checksum(VALUE_SETS["chart-secret"]) != checksum(other)


# ── The configuration ────────────────────────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize("name", VALUE_SETS)
def test_the_rendered_configuration_is_accepted_by_nines(helm, tmp_path, name):
    docs = render(helm, tmp_path, VALUE_SETS[name])
    text = rendered_toml_text(docs)
    tomllib.loads(text)  # valid TOML: no table written twice
    binary = os.environ.get("NINES_BIN")
    if not binary:
        pytest.skip("NINES_BIN is not set: `nines check` not run on the rendered configuration")
    path = tmp_path / "nines.toml"
    path.write_text(text)
    proc = subprocess.run([binary, "check", "--config", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"nines check refused the rendered configuration:\n{proc.stderr}\n{text}"
    assert "OK" in proc.stdout


def test_values_reach_server_and_state(helm, tmp_path):
    config = rendered_toml(render(helm, tmp_path, VALUE_SETS["chart-secret"]))
    assert config["server"] == {"drain": "30s", "max_in_flight": 2048, "queue_default": "3s"}
    assert config["state"]["budget"] == "80ms"
    assert config["state"]["prefix"] == "fleet-a"


def test_redis_url_lands_in_state(helm, tmp_path):
    # No Redis: no [state] at all (each replica on its own state).
    assert "state" not in rendered_toml(render(helm, tmp_path, {}))
    # An existing Redis, as written.
    url = VALUE_SETS["redis-url"]["redis"]["url"]
    assert rendered_toml(render(helm, tmp_path, VALUE_SETS["redis-url"]))["state"] == {"redis_url": url}
    # The chart's Redis: the URL names its Service and port, and that Service selects its pod.
    docs = render(helm, tmp_path, VALUE_SETS["redis-enabled"])
    svc = one(docs, "Service", "rel-nines-redis")
    (port,) = svc["spec"]["ports"]
    expected = f"redis://{svc['metadata']['name']}.{NAMESPACE}.svc:{port['port']}"
    assert rendered_toml(docs)["state"]["redis_url"] == expected
    redis_pod = one(docs, "Deployment", "rel-nines-redis")["spec"]["template"]
    assert labels_match(svc["spec"]["selector"], redis_pod["metadata"]["labels"])
    assert port["targetPort"] in [p["name"] for p in redis_pod["spec"]["containers"][0]["ports"]]
    # nines' own Service and PDB must not select the Redis pod, nor Redis's Service nines' pods.
    assert not labels_match(one(docs, "Service")["spec"]["selector"], redis_pod["metadata"]["labels"])
    assert not labels_match(one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
                            redis_pod["metadata"]["labels"])
    nines_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert not labels_match(svc["spec"]["selector"], nines_labels)
    # Its NetworkPolicy lets nines' pods in.
    policy = one(docs, "NetworkPolicy", "rel-nines-redis")
    assert labels_match(policy["spec"]["podSelector"]["matchLabels"], redis_pod["metadata"]["labels"])
    (rule,) = policy["spec"]["ingress"]
    assert labels_match(rule["from"][0]["podSelector"]["matchLabels"], nines_labels)


def test_a_changed_config_rolls_the_pods(helm, tmp_path):
    def checksum(values):
        docs = render(helm, tmp_path, values)
        return one(docs, "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/config"]

    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    changed = defaults["config"] + '\n[routes."gpt-4.1"]\ntargets = ["openai/gpt-4.1"]\n'
    assert checksum({}) == checksum({}), "the checksum is stable"
    assert checksum({}) != checksum({"config": changed})
    # What the chart writes into the file counts too.
    assert checksum({}) != checksum({"drainSeconds": 45})
    assert checksum({}) != checksum(VALUE_SETS["redis-url"])


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"config": '[server]\ndrain = "5s"\n'}, "[server]"),
        ({"config": '[state]\nredis_url = "redis://x"\n'}, "[state]"),
        ({"config": 'listen = "127.0.0.1:4000"\n'}, "listen"),
        ({"server": {"drain": "5s"}}, "drainSeconds"),
        ({"state": {"redis_url": "redis://x:6379"}}, "redis.url"),
        ({"redis": {"enabled": True, "url": "redis://x:6379"}}, "not both"),
        ({"secrets": {"existingSecret": "s", "values": {"A": "b"}}}, "not both"),
        ({"serviceMonitor": {"enabled": True}}, "admin key"),
    ],
)
def test_the_chart_refuses_what_would_break_the_configuration(helm, tmp_path, values, message):
    assert message in render_fails(helm, tmp_path, values)


# ── Scaling and monitoring ───────────────────────────────────────────────────────────────────────────────────────


def exported_in_flight_gauge():
    """The name nines registers its requests-in-flight gauge under, read from its source."""
    src = METRICS_RS.read_text()
    assert "Registry::default()" in src and "with_prefix" not in src, "names are registered without a prefix"
    assert re.search(r"let in_flight = Gauge::default\(\);", src), "in_flight is a gauge (no _total suffix)"
    m = re.search(r'registry\.register\(\s*"([a-z_]+)"\s*,\s*"[^"]*"\s*,\s*in_flight\.clone\(\)\s*\)', src)
    assert m, "the in_flight gauge's registration was not found in metrics.rs"
    return m.group(1)


def test_the_autoscaler_uses_the_gauge_nines_exports(helm, tmp_path):
    gauge = exported_in_flight_gauge()
    assert gauge == "nines_in_flight_requests"
    docs = render(helm, tmp_path, VALUE_SETS["monitoring"])
    hpa = one(docs, "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    deployment = one(docs, "Deployment")
    ref = hpa["spec"]["scaleTargetRef"]
    assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", deployment["metadata"]["name"])
    # The HPA owns the replica count.
    assert "replicas" not in deployment["spec"]
    assert hpa["spec"]["minReplicas"] == 3
    pods = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert [p["metric"]["name"] for p in pods] == [gauge]
    assert pods[0]["target"] == {"type": "AverageValue", "averageValue": "200"}
    cpu = [m["resource"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert cpu == [{"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}]
    # The PDB follows the autoscaler's floor.
    assert one(docs, "PodDisruptionBudget")["spec"]["minAvailable"] == 1


def test_service_monitor_scrapes_metrics_with_the_admin_key(helm, tmp_path):
    docs = render(helm, tmp_path, VALUE_SETS["monitoring"])
    sm = one(docs, "ServiceMonitor")
    assert sm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    (ep,) = sm["spec"]["endpoints"]
    assert (ep["port"], ep["path"]) == ("http", "/metrics")
    # /metrics is behind the admin key unless [status] public: the key the configuration names, from the Secret.
    admin_env = rendered_toml(docs)["auth"]["admin_key_env"]
    secret = one(docs, "Secret")
    assert ep["authorization"]["credentials"] == {"name": secret["metadata"]["name"], "key": admin_env}
    assert admin_env in secret["data"]
    # Public metrics: no credentials.
    public = {
        "serviceMonitor": {"enabled": True, "adminKey": {"key": ""}},
        "config": '[providers.local]\nkind = "openai"\nbase_url = "http://vllm:8000/v1"\n\n[status]\npublic = true\n',
    }
    (ep,) = one(render(helm, tmp_path, public), "ServiceMonitor")["spec"]["endpoints"]
    assert "authorization" not in ep


def test_pod_disruption_budget(helm, tmp_path):
    docs = render(helm, tmp_path, {})
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1 and "maxUnavailable" not in pdb["spec"]
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels_match(pdb["spec"]["selector"]["matchLabels"], labels)
    pdb = one(render(helm, tmp_path, {"podDisruptionBudget": {"maxUnavailable": "25%"}}), "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": "25%", "selector": pdb["spec"]["selector"]}
