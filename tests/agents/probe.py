#!/usr/bin/env python3
"""Run one agent, with the settings of agents.py, against capture.py and report what it sent and where it tried to go.

    probe.py AGENT [--mode error|text|script] [--status 500] [--should-retry false|true|none]
                   [--model M] [--prompt P] [--timeout 120] [--out DIR] [--no-netns] [--no-strace]

- a fresh workspace (hello.txt with a unique token) and HOME under --out (default: a new temp dir);
- capture.py records every request (requests.jsonl); `--mode script` answers `[[sim:call …]]` directives, and the
  default prompt carries the directive for the agent's read tool, so the whole tool loop runs;
- the agent runs under `strace -f -e trace=connect,sendto,…` (strace.log): every connect() to an address other than
  loopback is listed, and every DNS query name (read from the datagrams sent to port 53);
- unless --no-netns, everything runs inside a new network namespace (`unshare -n`, root) with only loopback up and
  the system resolver's address bound to lo, so nothing can leave the machine and the DNS queries are still visible.

Prints a JSON summary: exit code, time, output tails, requests (method, path, model, stream, tools), non-loopback
connects and DNS names.
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import agents  # noqa: E402


def resolver_addresses():
    out = []
    try:
        for line in open("/etc/resolv.conf"):
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver" and ":" not in parts[1]:
                out.append(parts[1])
    except OSError:
        pass
    return out


def tool_names(body):
    names = []
    for t in body.get("tools") or []:
        if "functionDeclarations" in t:
            names += [f.get("name") for f in t["functionDeclarations"]]
        elif "function" in t:
            names.append(t["function"].get("name"))
        elif "name" in t:
            names.append(t["name"])
        else:
            names.append(t.get("type"))
    return names


def model_of(record):
    body = record["body"] if isinstance(record["body"], dict) else {}
    if "model" in body:
        return body["model"]
    m = re.search(r"/models/([^/:?]+)", record["path"])
    return m.group(1) if m else None


def qname(raw):
    i, parts = 12, []
    while i < len(raw) and raw[i]:
        n = raw[i]
        parts.append(raw[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += n + 1
    return ".".join(parts)


def network_attempts(strace_log):
    connects, names = {}, {}
    for line in open(strace_log, errors="replace"):
        m = re.search(r'sin6?_port=htons\((\d+)\),[^}]*?(?:inet_addr|inet_pton\(AF_INET6?, )\("([^"]+)"\)', line)
        if m:
            addr = bytes.fromhex(m.group(2).replace("\\x", "")).decode() if "\\x" in m.group(2) else m.group(2)
            if addr not in ("127.0.0.1", "::1") and not addr.startswith("127."):
                key = f"{addr}:{m.group(1)}"
                connects[key] = connects.get(key, 0) + 1
        if re.search(r"\b(sendto|sendmsg|sendmmsg)\(", line):
            for h in re.findall(r'"((?:\\x[0-9a-f]{2}){17,})"', line):
                try:
                    q = qname(bytes.fromhex(h.replace("\\x", "")))
                except ValueError:
                    continue
                if q and re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", q):
                    names[q] = names.get(q, 0) + 1
    return connects, names


def inner(args):
    """Runs inside the namespace (or not): capture, agent, summary."""
    if args.netns:  # a fresh namespace: loopback up, and the resolver's address on lo so DNS queries are seen
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        for a in resolver_addresses():
            subprocess.run(["ip", "addr", "add", f"{a}/32", "dev", "lo"], check=True)
    out = pathlib.Path(args.out)
    home, work = out / "home", out / "work"
    for d in (home, work):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    token = f"probe-{uuid.uuid4().hex[:12]}"
    (work / "hello.txt").write_text(token + "\n")
    log = out / "requests.jsonl"
    log.unlink(missing_ok=True)
    cap = subprocess.Popen([sys.executable, str(HERE / "capture.py"), str(log), "--mode", args.mode,
                            "--status", str(args.status), "--should-retry", args.should_retry],
                           stdout=subprocess.PIPE, text=True)
    url = cap.stdout.readline().split()[-1]
    prompt = args.prompt or ("Read the file hello.txt in the current directory and tell me what it says. "
                             + agents.read_directive(args.agent, work))
    model = args.model or f"{args.agent}-route"
    argv, env = agents.command(args.agent, home, work, url, model, prompt)
    if not args.no_strace and shutil.which("strace"):
        argv = ["strace", "-f", "-qq", "-xx", "-s", "512", "-e", "trace=connect,sendto,sendmsg,sendmmsg",
                "-o", str(out / "strace.log")] + argv
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, env=env, cwd=work, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=args.timeout)
        code, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as e:
        code, stdout, stderr = "timeout", e.stdout or "", e.stderr or ""
        stdout = stdout.decode() if isinstance(stdout, bytes) else stdout
        stderr = stderr.decode() if isinstance(stderr, bytes) else stderr
    elapsed = round(time.monotonic() - start, 2)
    cap.terminate()
    cap.wait()
    (out / "stdout").write_text(stdout)
    (out / "stderr").write_text(stderr)
    records = [json.loads(line) for line in open(log)] if log.exists() else []
    summary = {
        "agent": args.agent, "exit": code, "seconds": elapsed, "token_in_output": token in stdout,
        "stdout_tail": stdout[-600:], "stderr_tail": stderr[-600:],
        "requests": [{"method": r["method"], "path": r["path"], "model": model_of(r),
                      "stream": (r["body"] or {}).get("stream") if isinstance(r["body"], dict) else None,
                      "tools": tool_names(r["body"]) if isinstance(r["body"], dict) else []} for r in records],
    }
    if (out / "strace.log").exists():
        summary["non_loopback_connects"], summary["dns_names"] = network_attempts(out / "strace.log")
    summary["dir"] = str(out)
    print(json.dumps(summary, indent=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("agent", choices=agents.AGENTS)
    ap.add_argument("--mode", choices=["error", "text", "script"], default="script")
    ap.add_argument("--status", type=int, default=500)
    ap.add_argument("--should-retry", choices=["true", "false", "none"], default="false")
    ap.add_argument("--model")
    ap.add_argument("--prompt")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--out")
    ap.add_argument("--no-netns", action="store_true")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--netns", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if reason := agents.installed():
        sys.exit(reason)
    args.out = args.out or tempfile.mkdtemp(prefix=f"probe-{args.agent}-")
    if args.inner or args.no_netns:
        return inner(args)
    # Re-run this script inside a new network namespace, where inner() first brings up loopback.
    me = [sys.executable, os.path.abspath(__file__), *sys.argv[1:], "--inner", "--netns", "--out", args.out]
    sys.exit(subprocess.call(["unshare", "-n", "--", *me]))

if __name__ == "__main__":
    main()
