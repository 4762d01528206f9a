#!/usr/bin/env python3
"""kiln serve under the faults and hostile requests of docs/reliability.md, with figures.

Each part starts a fresh `kiln serve` (local executor) in a temporary folder on loopback:

  sigterm    N rounds: six uncached jobs (examples/mlp.mlir with a distinct trailing
             comment each, targets cpu and cuda:h100), SIGTERM as soon as the first
             compiler child runs, restart on the same data folder; counts the jobs that
             end succeeded with both modules downloadable (sha256 checked).
  duplicates 10,000 copies of one target in `options`: status, time to the answer,
             body size, the service's RSS growth.
  slow       300 authenticated uploads declaring 200 MB and sending a byte a second;
             /healthz probed every 0.2 s for 20 s: answered, worst and p99 latency.
  kill9      kill -9 of the service while the compiler runs: time until no compiler
             process it started remains.

usage: .venv/bin/python bench/serve_reliability.py [--rounds N] BUILD/kiln [PART...]
"""
import argparse
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKEN = "bench-token-0123456789abcdef"


class Server:
    def __init__(self, kiln, work, extra=()):
        self.kiln, self.work, self.extra = kiln, work, list(extra)
        self.proc = None

    def start(self):
        port_file = os.path.join(self.work, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        env = dict(os.environ, KILN_SERVE_TOKENS=TOKEN, KILN_CACHE="false")
        log = open(os.path.join(self.work, "serve.log"), "a")
        self.proc = subprocess.Popen([self.kiln, "serve", "--listen", "127.0.0.1:0", "--port-file", port_file,
                                      "--data-dir", os.path.join(self.work, "data"), "--executor", "local",
                                      "--workers", "1"] + self.extra, env=env, stderr=log, stdout=log)
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.05)
        self.port = int(open(port_file).read())

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=120)
        self.proc = None

    def request(self, method, path, body=None, headers=None, auth=True):
        h = dict(headers or {})
        if auth:
            h["Authorization"] = "Bearer " + TOKEN
        c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, data

    def submit(self, text, options):
        boundary = "kilnbench"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"; filename=\"m.mlir\"\r\n\r\n"
                f"{text}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n"
                f"{options}\r\n--{boundary}--\r\n").encode()
        return self.request("POST", "/v1/jobs", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})

    def rss_kib(self):
        for line in open(f"/proc/{self.proc.pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0


def children(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(c) for c in open(f"/proc/{pid}/task/{task}/children").read().split()]
        except OSError:
            pass
    return out


def running(pid):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def sigterm(kiln, rounds):
    text = open(os.path.join(ROOT, "examples/mlp.mlir")).read()
    good = total = 0
    for r in range(rounds):
        with tempfile.TemporaryDirectory() as work:
            s = Server(kiln, work, ["--grace", "0"])
            s.start()
            ids = []
            for i in range(6):
                status, body = s.submit(text + f"\n// round {r} job {i} {time.time()}\n",
                                        '{"targets": ["cpu", "cuda:h100"]}')
                ids.append(json.loads(body)["id"])
            while not children(s.proc.pid):
                time.sleep(0.005)
            s.stop(signal.SIGTERM)
            s.extra = []
            s.start()
            for jid in ids:
                while True:
                    j = json.loads(s.request("GET", f"/v1/jobs/{jid}")[1])
                    if j["state"] in ("succeeded", "failed", "cancelled"):
                        break
                    time.sleep(0.2)
                ok = j["state"] == "succeeded" and len(j.get("units", [])) == 2
                for u in j.get("units", []):
                    status, data = s.request("GET", u["links"]["module"]) if u.get("ok") else (0, b"")
                    ok = ok and status == 200 and hashlib.sha256(data).hexdigest() == u["sha256"]
                good += ok
                total += 1
            s.stop()
        print(f"sigterm round {r + 1}: {good}/{total} jobs succeeded with both modules so far", flush=True)
    print(f"sigterm: {rounds} rounds, {good} of {total} jobs succeeded with both units downloadable")


def duplicates(kiln):
    with tempfile.TemporaryDirectory() as work:
        s = Server(kiln, work)
        s.start()
        s.request("GET", "/healthz", auth=False)
        before = s.rss_kib()
        options = json.dumps({"targets": ["cpu"] * 10000})
        text = open(os.path.join(ROOT, "examples/mlp.mlir")).read()
        started = time.monotonic()
        status, body = s.submit(text, options)
        ms = (time.monotonic() - started) * 1000
        after = s.rss_kib()
        s.stop()
    print(f"duplicates: 10,000 targets -> {status} in {ms:.1f} ms, body {len(body)} bytes, "
          f"RSS {before / 1024:.1f} -> {after / 1024:.1f} MiB (+{(after - before) / 1024:.1f} MiB)")


def slow(kiln, seconds=20):
    with tempfile.TemporaryDirectory() as work:
        s = Server(kiln, work)
        s.start()
        baseline = []
        for _ in range(50):
            started = time.monotonic()
            s.request("GET", "/healthz", auth=False)
            baseline.append((time.monotonic() - started) * 1000)
            time.sleep(0.05)
        baseline.sort()
        print(f"slow uploads: baseline, no uploads: 50 /healthz probes, p99 {baseline[48]:.1f} ms, "
              f"worst {baseline[-1]:.1f} ms")
        head = (f"POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 200000000\r\n\r\n").encode()
        conns = []
        for _ in range(300):
            c = socket.create_connection(("127.0.0.1", s.port))
            c.sendall(head)
            c.setblocking(False)
            conns.append(c)
        latencies, answered = [], 0
        end = time.monotonic() + seconds
        last_byte = 0
        while time.monotonic() < end:
            if time.monotonic() - last_byte >= 1:
                last_byte = time.monotonic()
                for c in conns:
                    try:
                        c.send(b"-")
                    except OSError:
                        pass
            started = time.monotonic()
            try:
                status, _ = s.request("GET", "/healthz", auth=False)
                answered += status == 200
            except OSError:
                pass
            latencies.append((time.monotonic() - started) * 1000)
            time.sleep(0.2)
        for c in conns:
            c.close()
        s.stop()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"slow uploads: 300 at 1 byte/s, {len(latencies)} /healthz probes over {seconds} s: {answered} answered 200, "
          f"within 100 ms: {sum(l < 100 for l in latencies)}, p99 {p99:.1f} ms, worst {latencies[-1]:.1f} ms")


def kill9(kiln):
    text = open(os.path.join(ROOT, "examples/mlp.mlir")).read()
    with tempfile.TemporaryDirectory() as work:
        s = Server(kiln, work)
        s.start()
        s.submit(text + f"\n// kill9 {time.time()}\n", '{"targets": ["cuda:h100"]}')
        kids = []
        while not kids:
            kids = children(s.proc.pid)
            time.sleep(0.002)
        s.proc.kill()
        s.proc.wait()
        killed = time.monotonic()
        while any(running(k) for k in kids) and time.monotonic() - killed < 10:
            time.sleep(0.001)
        left = [k for k in kids if running(k)]
        ms = (time.monotonic() - killed) * 1000
        for k in left:
            os.kill(k, signal.SIGKILL)
    print(f"kill9: {len(kids)} compiler process(es) at the kill; "
          + (f"{len(left)} still running 10 s later" if left else f"all gone {ms:.1f} ms after the kill"))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("kiln")
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("parts", nargs="*", default=["duplicates", "slow", "kill9", "sigterm"])
    a = p.parse_args()
    kiln = os.path.abspath(a.kiln)
    for part in a.parts:
        if part == "sigterm":
            sigterm(kiln, a.rounds)
        else:
            globals()[part](kiln)


if __name__ == "__main__":
    sys.exit(main())
