"""Processes and /proc figures for bench/run: starting children (pinned, and killed with this script), reading
their output lines, their CPU time and memory, and small loopback helpers. Never measures anything by itself."""

import ctypes
import json
import os
import select
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)


class BenchError(Exception):
    pass


def preexec(cpus):
    def run():
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if cpus:
            os.sched_setaffinity(0, cpus)
    return run


class Proc:
    """A child process: its Popen, a log file for stderr, and a line reader over stdout."""

    def __init__(self, name, popen, log_path):
        self.name, self.p, self.log_path = name, popen, log_path
        self.buf = b""
        self.extra_pids = []  # nginx workers

    @property
    def pid(self):
        return self.p.pid

    def log_tail(self, n=15):
        try:
            lines = Path(self.log_path).read_text(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    def line(self, timeout):
        fd = self.p.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BenchError(f"{self.name}: no output within {timeout:.0f} s\n{self.log_tail()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    code = self.p.wait()
                    raise BenchError(f"{self.name} exited with code {code}\n{self.log_tail()}")
                self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def json_line(self, timeout):
        while True:
            line = self.line(timeout)
            if line.startswith("{"):
                return json.loads(line)


class Procs:
    def __init__(self, run_dir):
        self.run_dir = run_dir
        self.items = []

    def spawn(self, name, argv, cpus=None, stdin=False, env=None):
        log_path = self.run_dir / f"{name}.log"
        with open(log_path, "ab") as err:
            p = subprocess.Popen(
                argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=err, bufsize=0, preexec_fn=preexec(cpus), env=env, cwd=self.run_dir,
            )
        proc = Proc(name, p, log_path)
        self.items.append(proc)
        return proc

    def stop(self, proc, timeout=5):
        if proc.p.poll() is None:
            try:
                proc.p.send_signal(signal.SIGTERM)
                proc.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.p.kill()
                proc.p.wait()
            except ProcessLookupError:
                pass
        for pid in proc.extra_pids:  # children (nginx workers) that outlived their parent
            if pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if proc.p.stdout:
            proc.p.stdout.close()
        if proc.p.stdin:
            proc.p.stdin.close()
        if proc in self.items:
            self.items.remove(proc)

    def stop_all(self):
        for proc in reversed(list(self.items)):
            self.stop(proc)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def children_of(pid):
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        out.append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    return out


# ── /proc figures ─────────────────────────────────────────────────────────────────────────────────────────────────


def cpu_sample(pids):
    """CPU used so far by the processes: per thread in ns (schedstat), and user + system in clock ticks (stat,
    which also counts threads that have exited)."""
    threads, ticks = {}, 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                    threads[int(tid)] = int(f.read().split()[0])
        except OSError:
            threads = None
    return {"threads": threads, "ticks": ticks}


def machine_busy_seconds():
    """CPU seconds the whole machine has been busy (all CPUs), from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / CLK_TCK


def cpu_delta(before, after):
    """CPU seconds between two samples: nanosecond-exact when no thread ended in between, else clock ticks."""
    b, a = before["threads"], after["threads"]
    if b is not None and a is not None and set(b) <= set(a):
        return (sum(a.values()) - sum(b.values())) / 1e9
    return (after["ticks"] - before["ticks"]) / CLK_TCK


def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss(pids):
    """Reset VmHWM (peak RSS) so each scenario reports its own peak (Linux >= 4.0; needs ownership or root)."""
    ok = True
    for pid in pids:
        try:
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            ok = False
    return ok


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


def http(method, url, body=None, headers=None, timeout=10, cafile=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
        return resp.status, resp.read()
