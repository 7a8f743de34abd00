"""Arithmetic and reporting for bench/run: added latencies and ratios, the issue's targets, the table, and what
the JSON records about the machine. Pure functions over the results; no process is started here except git and the
tools' --version."""

import os
import platform
import subprocess
import sys
from pathlib import Path

MAIN = Path(__file__).resolve().parent.parent


def ratio(a, b):
    return round(a / b, 3) if a is not None and b not in (None, 0) else None


def added(d, n, x, keys):
    out = {}
    for k in keys:
        for p in ("p50", "p90", "p99"):
            if d.get(k) and n.get(k) and x.get(k):
                na, xa = n[k][p] - d[k][p], x[k][p] - d[k][p]
                out[f"{k}.{p}"] = {"nines": round(na, 1), "nginx": round(xa, 1),
                                   "nines_over_nginx": round(na / xa, 3) if xa > 0 else None}
    return out


def compare(group):
    """Added latency of nines and nginx over direct (difference of percentiles) and their ratios: at the moderate
    rate (`added_us`: the path's own latency) and at the fixed concurrency (`added_us_at_concurrency`: mostly
    queueing, since a closed loop saturates the CPU). Throughput ratios come from the fixed concurrency."""
    keys = ["latency_us"] if group["mode"] == "plain" else ["ttft_us", "total_us"]
    r = group["at_rate"]
    group["added_us"] = added(r["direct"], r["nines"], r["nginx"], keys)
    group["added_us_at_concurrency"] = added(group["direct"], group["nines"], group["nginx"], keys)
    n, x, d = group["nines"], group["nginx"], group["direct"]
    group["throughput_nines_over_nginx"] = ratio(n["rps"], x["rps"])
    group["throughput_nines_over_direct"] = ratio(n["rps"], d["rps"])
    group["throughput_nginx_over_direct"] = ratio(x["rps"], d["rps"])


def targets(results):
    """The issue's targets, from this run's figures. `met` is None when a figure is missing or meaningless."""
    out = []

    def add(what, value, op, limit, unit=""):
        met = None if value is None else (value <= limit if op == "<=" else value >= limit if op == ">=" else
                                          value < limit)
        out.append({"target": what, "value": value, "op": op, "limit": limit, "unit": unit, "met": met})

    for key, what in (("plain.same.small", "non-streaming same-dialect"),
                      ("plain.features.small", "non-streaming, every feature on")):
        g = results.get(key)
        if not g:
            continue
        add(f"{what}: nines added p50 / nginx added p50, at {g['rate']} req/s",
            g["added_us"].get("latency_us.p50", {}).get("nines_over_nginx"), "<=", 1.5, "x")
        add(f"{what}: nines added p99 / nginx added p99, at {g['rate']} req/s",
            g["added_us"].get("latency_us.p99", {}).get("nines_over_nginx"), "<=", 2.0, "x")
        add(f"{what}: throughput nines / nginx, at concurrency {g['nines']['load'].split(', ')[1]}",
            g["throughput_nines_over_nginx"], ">=", 0.8, "x")
    for key in ("plain.translated.small", "plain.translated.100k"):
        if key in results:
            add(f"{key}: nines CPU per request / same-dialect", results[key]["nines_cpu_vs_same_dialect"], "<=",
                1.2, "x")
    for key in ("stream.translated.small", "stream.translated.100k"):
        if key in results:
            add(f"{key}: nines CPU per answer / same-dialect", results[key]["nines_cpu_vs_same_dialect"], "<=",
                1.3, "x")
    g = results.get("stream.same.small")
    if g:
        add(f"streaming same-dialect: throughput nines / nginx, at concurrency {g['nines']['load'].split(', ')[1]}",
            g["throughput_nines_over_nginx"], ">=", 0.8, "x")
        for k, p, limit in (("ttft_us", "p50", 1.5), ("ttft_us", "p99", 2.0), ("total_us", "p50", 1.5),
                            ("total_us", "p99", 2.0)):
            what = "time to first token" if k == "ttft_us" else "time to last event"
            add(f"streaming same-dialect: nines added {what} {p} / nginx's, at {g['rate']} req/s",
                g["added_us"].get(f"{k}.{p}", {}).get("nines_over_nginx"), "<=", limit, "x")
    o = results.get("open_streams")
    if o:
        add(f"{o['open']} open streams (HTTP/1.1 upstream): nines RSS (extrapolated to 10,000 streams)",
            o["nines_rss_at_10k_mb"], "<", 120, "MB")
        add("open streams: share of the memory they took that returned after they closed", o["returned_fraction"],
            ">=", 0.9, "")
    s = results.get("startup")
    if s:
        add("start-up (spawn to listening line), median", s["median_ms"], "<", 100, "ms")
    return out


def ms(us):
    return f"{us / 1000:.3f}" if us is not None else "-"


def plus_ms(us):
    return f"{us / 1000:+.3f}" if us is not None else "-"


def times(x):
    return f"{x:.2f}x" if x is not None else "n/a"


def print_report(meta, results, target_list):
    w = sys.stdout.write
    m = meta["machine"]
    w(f"\nnines benchmark · {meta['date']} · commit {meta['commit'][:12]}{' (dirty tree)' if meta['dirty'] else ''}\n")
    w(f"machine: {m['cpu_model']} · {m['nproc']} CPUs · {m['mem_gb']} GB · Linux {m['kernel']} · "
      f"load {m['loadavg_start']} at start\n")
    other = meta.get("other_cpu")
    if other and other["max_share"] > 0.1:
        w(f"WARNING: other processes were busy during the measured runs (up to {other['max_share']:.0%} of a CPU "
          f"in {other['worst']}, {other['mean_share']:.0%} on average): the figures, p99 above all, are noisy. "
          "Rerun on an idle machine.\n")
    c = meta["settings"]
    pin = c["pinning"]
    w(f"load: concurrency {c['concurrency']}, {c['seconds']} s per path after {c['warmup']} s warm-up; "
      + (f"proxy (nines or nginx) on CPU {pin['proxy_cpus']}, simulator and load generator on CPU {pin['load_cpus']}"
         if pin["proxy_cpus"] else "no CPU pinning")
      + f"; nginx worker_processes {c['nginx_worker_processes']}\n")
    w("Left: closed loop at the fixed concurrency (throughput; latency there is mostly queueing). Right: open loop at\n"
      "a moderate fixed rate (latency of the path itself). Times in ms; +: added over direct at the same percentile;\n"
      "CPU: µs of CPU per request of the named process (closed loop); RSS: its peak during the run.\n")
    names = {"same": "same dialect (OpenAI door -> openai provider)",
             "translated": "translated (Anthropic door -> openai provider)",
             "features": "same dialect, every feature on (a key with limits and a budget, breakers, status store, "
                         "JSON logs, /metrics scraped)"}
    for key, g in results.items():
        if "." not in key:
            continue
        mode, variant, size = key.split(".")
        plain = mode == "plain"
        w(f"\n{'Non-streaming' if plain else 'Streaming'} · {names[variant]} · {size} prompt "
          f"({max(g['request_bytes'].values()) / 1024:.1f} KB request)\n")
        left = f"concurrency {c['concurrency']}" + (" (wrk)" if plain else "")
        if plain:
            w(f"  {'':<9}{left:<51}| at {g['rate']} req/s\n")
            w(f"  {'path':<9}{'req/s':>8}{'p50':>8}{'p99':>8}{'CPU µs/req':>14}{'RSS MB':>8}{'err':>5} |"
              f"{'p50':>7}{'p90':>8}{'p99':>8}{'+p50':>8}{'+p99':>8}{'err':>5}\n")
        else:
            w(f"  {'':<9}{left:<59}| at {g['rate']} req/s\n")
            w(f"  {'path':<9}{'req/s':>8}{'TTFT50':>8}{'TTFT99':>8}{'tot99':>8}{'CPU µs/req':>14}{'RSS MB':>8}"
              f"{'err':>5} |{'TTFT50':>7}{'TTFT99':>8}{'tot99':>8}{'+TTFT50':>8}{'+TTFT99':>8}{'+tot99':>8}"
              f"{'err':>5}\n")
        for label, tag in (("direct", "a direct"), ("nines", "b nines"), ("nginx", "c nginx")):
            r, q = g[label], g["at_rate"][label]
            star = "*" if variant == "translated" and label != "nines" else " "
            who = "sim" if label == "direct" else label
            cpu = r["cpu_us_per_request"].get(who)
            cpu_s = f"{who} {cpu:.1f}" if cpu is not None else "-"
            rss = r.get(f"{label}_peak_rss_mb")
            rss_s = f"{rss:.1f}" if rss is not None else "-"

            def plus(k):
                return "-" if label == "direct" else plus_ms(g["added_us"].get(k, {}).get(label))

            if plain:
                lat, qlat = r["latency_us"] or {}, q["latency_us"] or {}
                w(f" {star}{tag:<9}{r['rps']:>8.0f}{ms(lat.get('p50')):>8}{ms(lat.get('p99')):>8}{cpu_s:>14}"
                  f"{rss_s:>8}{r['errors']:>5} |{ms(qlat.get('p50')):>7}{ms(qlat.get('p90')):>8}"
                  f"{ms(qlat.get('p99')):>8}{plus('latency_us.p50'):>8}{plus('latency_us.p99'):>8}{q['errors']:>5}\n")
            else:
                t, tot = r["ttft_us"] or {}, r["total_us"] or {}
                qt, qtot = q["ttft_us"] or {}, q["total_us"] or {}
                w(f" {star}{tag:<9}{r['rps']:>8.0f}{ms(t.get('p50')):>8}{ms(t.get('p99')):>8}{ms(tot.get('p99')):>8}"
                  f"{cpu_s:>14}{rss_s:>8}{r['errors']:>5} |{ms(qt.get('p50')):>7}{ms(qt.get('p99')):>8}"
                  f"{ms(qtot.get('p99')):>8}{plus('ttft_us.p50'):>8}{plus('ttft_us.p99'):>8}"
                  f"{plus('total_us.p99'):>8}{q['errors']:>5}\n")
        a = g["added_us"]
        k = "latency_us" if plain else "ttft_us"
        w(f"  nines/nginx: throughput {times(g['throughput_nines_over_nginx'])}; "
          f"{'added latency' if plain else 'added TTFT'} at {g['rate']} req/s: "
          f"p50 {times(a.get(f'{k}.p50', {}).get('nines_over_nginx'))}, "
          f"p99 {times(a.get(f'{k}.p99', {}).get('nines_over_nginx'))}")
        if variant == "translated":
            w(f"; nines CPU/request {times(g['nines_cpu_vs_same_dialect'])} of same dialect\n"
              f"  * a and c: from the same-dialect run above (the OpenAI request nines sends upstream)")
        w("\n")
    t = results.get("tls")
    if t:
        w("\nUpstream over HTTPS, HTTP/2 (self-signed certificate trusted through tls_ca) · same dialect, small\n")
        for mode in ("plain", "stream"):
            s = t.get(f"{mode}_summary")
            if s:
                h1 = (f"; HTTP/1.1 upstream above: {s['http1_upstream_rps']} req/s, "
                      f"{s['http1_upstream_nines_cpu_us_per_request']} µs ({times(s['nines_cpu_vs_http1_upstream'])})"
                      if s["http1_upstream_rps"] else "")
                w(f"  {'whole-body' if mode == 'plain' else 'streamed':<11} {s['rps']:>7} req/s, nines "
                  f"{s['nines_cpu_us_per_request']:.1f} µs CPU/request{h1}\n")
    for key in ("open_streams", "open_streams_h2_tls"):
        if key in results:
            open_report(w, results[key])
    s = results.get("startup")
    if s:
        w(f"\nStart-up (spawn to 'listening' line): median {s['median_ms']} ms over {s['runs']} runs "
          f"(min {s['min_ms']}, max {s['max_ms']})\n")
    if target_list:
        w("\nTargets (issues 5 and 18)\n")
        for t in target_list:
            verdict = {True: "met", False: "MISSED", None: "n/a"}[t["met"]]
            value = f"{t['value']:.3f}" if isinstance(t["value"], float) else \
                "n/a" if t["value"] is None else str(t["value"])
            w(f"  {verdict:<7}{t['target']}: {value}{t['unit']} (target {t['op']} {t['limit']}{t['unit']})\n")
    w(f"\nresults: {meta['json_path']}\n")


def open_report(w, o):
    w(f"\nOpen streams · {o['open']} of {o['requested']} open ({o['failed']} failed) over "
      f"{o['client_protocol']} ({o['client_connections']} client connections), one event per "
      f"{o['drip_ms']} ms, opened in {o['seconds_to_open']} s; upstream {o.get('upstream', 'HTTP/1.1')}\n")
    w(f"  nines RSS: {o['nines_rss_before_mb']} MB before, {o['nines_rss_open_mb']} MB with them open "
      f"(peak {o['nines_peak_rss_mb']} MB), {o['nines_rss_after_mb']} MB after they closed\n")
    per = o["nines_kb_per_stream"]
    w(f"  {per if per is not None else '-'} KB per stream; at 10,000 streams ≈ {o['nines_rss_at_10k_mb']} MB; "
      f"returned after close: {o['returned_fraction']}; "
      f"nines open files {o['nines_open_fds']['before']} -> {o['nines_open_fds']['open']} -> "
      f"{o['nines_open_fds']['after']}\n")


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {"nproc": os.cpu_count(), "cpus_available": len(os.sched_getaffinity(0)), "cpu_model": model,
            "kernel": platform.release(), "mem_gb": round(mem_kb / 1024 / 1024, 1),
            "loadavg_start": " ".join(Path("/proc/loadavg").read_text().split()[:3])}


def git(*args):
    try:
        return subprocess.run(["git", "-C", str(MAIN), *args], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def version(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "unknown"
