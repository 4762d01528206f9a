"""kiln's fleet mode against a real PostgreSQL and a real S3 store (SeaweedFS),
both started by scripts/fleet-env.sh on loopback.

  fleet_test.py KILN_BINARY [PART...]
  (parts: faults shared_cache cancel_and_drain unreachable queue_lost store_lost)

One `kiln serve --workers 0` front and `kiln worker`s, all local processes:
  1. faults: 4 workers, 40 jobs; one worker SIGKILLed while idle, one while it
     compiles -> 40/40 succeed, no job runs again after it succeeded, the
     killed worker's job runs again within one lease, no compiler is left;
  2. the shared cache: 10 jobs, then the same 10 on fresh workers with empty
     local caches -> every unit a hit served from the shared store;
  3. cancel on the front stops the compile on the worker; SIGTERM of a worker
     mid-compile gives its job back to another;
  4. a queue or store that cannot be reached at start: a clear error;
  5. the queue, then the store, lost while the front runs: 503 with the
     reason, and the service recovers when the backend is back.
Prints the figures it measured.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KILN = os.path.abspath(sys.argv[1])
TOKEN = "fleet-test-token-" + uuid.uuid4().hex
LEASE = 4.0
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def model(tag, depth=4):
    """A small program, different for every tag (so each one compiles)."""
    lines = ["func.func @main(%arg0: tensor<32x32xf32>) -> tensor<32x32xf32> {"]
    prev = "%arg0"
    for k in range(depth):
        lines.append(f"  %c{k} = stablehlo.constant dense<{tag}.{k + 1}> : tensor<32x32xf32>")
        lines.append(f"  %d{k} = stablehlo.dot_general {prev}, %c{k}, contracting_dims = [1] x [0] : "
                     "(tensor<32x32xf32>, tensor<32x32xf32>) -> tensor<32x32xf32>")
        lines.append(f"  %t{k} = stablehlo.tanh %d{k} : tensor<32x32xf32>")
        prev = f"%t{k}"
    lines += [f"  return {prev} : tensor<32x32xf32>", "}"]
    return "\n".join(lines) + "\n"


class Fleet:
    def __init__(self, tmp):
        self.tmp = tmp
        self.envdir = os.path.join(tmp, "env")
        subprocess.run(["bash", os.path.join(ROOT, "scripts/fleet-env.sh"), "start", self.envdir], check=True)
        self.env = dict(os.environ)
        with open(os.path.join(self.envdir, "env")) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                if k:
                    self.env[k] = v
        self.env["KILN_SERVE_TOKENS"] = TOKEN
        self.env["KILN_STORE"] = self.env["KILN_STORE"] + "-" + uuid.uuid4().hex[:8]
        self.procs = {}
        self.port = None

    def start_front(self):
        port_file = os.path.join(self.tmp, "port")
        self.spawn("front", [KILN, "serve", "--workers", "0", "--listen", "127.0.0.1:0", "--port-file", port_file,
                             "--data-dir", os.path.join(self.tmp, "front"), "--lease", str(LEASE)])
        for _ in range(200):
            if os.path.exists(port_file) and open(port_file).read().strip():
                self.port = int(open(port_file).read())
                return
            time.sleep(0.1)
        raise RuntimeError("the front did not start: " + self.log("front"))

    def start_worker(self, name, extra=()):
        env = {"KILN_CACHE_DIR": os.path.join(self.tmp, "cache-" + name)}
        self.spawn(name, [KILN, "worker", "--data-dir", os.path.join(self.tmp, name), "--lease", str(LEASE),
                          "--executor", "local"] + list(extra), env)
        for _ in range(300):
            if "kiln worker " in self.log(name):
                return
            if self.procs[name].poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"worker {name} did not start: " + self.log(name))

    def spawn(self, name, argv, extra=None):
        env = dict(self.env, **(extra or {}))
        log = open(os.path.join(self.tmp, name + ".log"), "w")
        self.procs[name] = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=self.tmp)

    def log(self, name):
        with open(os.path.join(self.tmp, name + ".log")) as f:
            return f.read()

    def request(self, method, path, body=None, headers=None):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body, method=method,
                                     headers=dict({"Authorization": "Bearer " + TOKEN}, **(headers or {})))
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def submit(self, text):
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"; filename=\"m.mlir\"\r\n\r\n{text}\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n"
                '{"targets": ["cpu"]}\r\n'
                f"--{boundary}--\r\n").encode()
        status, out = self.request("POST", "/v1/jobs", body, {"Content-Type": "multipart/form-data; boundary=" + boundary})
        if status != 202:
            raise RuntimeError(f"submit: {status} {out[:300]}")
        return json.loads(out)["id"]

    def job(self, jid):
        status, out = self.request("GET", "/v1/jobs/" + jid)
        return json.loads(out)

    def wait(self, ids, timeout=600):
        deadline = time.time() + timeout
        while time.time() < deadline:
            jobs = [self.job(j) for j in ids]
            if all(j["state"] in ("succeeded", "failed", "cancelled") for j in jobs):
                return jobs
            time.sleep(0.5)
        raise RuntimeError("jobs did not finish: " + str([j["state"] for j in jobs]))

    def kill(self, name, sig=signal.SIGKILL):
        p = self.procs.pop(name)
        p.send_signal(sig)
        p.wait(timeout=60)
        return time.time()

    def pg(self, action):
        pg_bin = os.environ.get("KILN_PG_BIN", "/usr/lib/postgresql/15/bin")
        argv = [pg_bin + "/pg_ctl", "-D", os.path.join(self.envdir, "pg"), "-l", os.path.join(self.envdir, "pg.log"),
                "-w", "-m", "fast", action]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "kiln-pg", "--"] + argv
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)

    def close(self):
        for p in self.procs.values():
            p.kill()
            p.wait()
        subprocess.run(["bash", os.path.join(ROOT, "scripts/fleet-env.sh"), "stop", self.envdir])


def runs_of(logs, jid):
    return sum(len(re.findall(r"running job " + jid + r"\b", text)) for text in logs)


def faults(fleet):
    for i in range(1, 5):
        fleet.start_worker(f"w{i}")
    fleet.kill("w4")  # idle: it holds nothing
    ids = [fleet.submit(model(100 + i)) for i in range(40)]
    # SIGKILL w1 as soon as it runs a job: its compiler is running then.
    victim, killed_at = None, None
    deadline = time.time() + 120
    while victim is None and time.time() < deadline:
        m = re.findall(r"running job ([0-9a-f]{32})", fleet.log("w1"))
        if m:
            killed_at = fleet.kill("w1")
            victim = m[-1]
        time.sleep(0.05)
    check(victim is not None, "worker w1 was killed while it compiled a job")
    jobs = fleet.wait(ids)
    ok = sum(j["state"] == "succeeded" for j in jobs)
    check(ok == 40, f"40 jobs, 1 worker killed idle and 1 mid-compile: {ok}/40 succeeded")
    logs = [fleet.log(f"w{i}") for i in range(1, 5)]
    again = [j["id"] for j in jobs if runs_of(logs, j["id"]) != (2 if j["id"] == victim else 1)]
    check(not again, f"every job ran once, the killed worker's twice (others: {again})")
    ends = [j["id"] for j in jobs if sum(t.count("job " + j["id"] + " succeeded") for t in logs) != 1]
    check(not ends, f"no job ran again after it succeeded ({ends})")
    v = fleet.job(victim)
    redispatch = v["started_at"] - killed_at
    check(v["attempts"] == 2, f"the killed worker's job started twice (attempts {v['attempts']})")
    # Expiry is seen by the others' lease loops, every third of a lease; the
    # job then waits for a worker to finish the compile it has in hand (the
    # queue is full), a few seconds on a busy 2-core machine.
    check(redispatch <= LEASE * 4 / 3 + 4,
          f"the killed worker's job ran again {redispatch:.1f} s after the kill (lease {LEASE:.0f} s)")
    print(f"FIGURE redispatch_seconds={redispatch:.2f} lease_seconds={LEASE}", flush=True)
    left = []
    for _ in range(60):
        ps = subprocess.run(["pgrep", "-f", "iree-compile.*" + re.escape(fleet.tmp)], capture_output=True, text=True)
        left = ps.stdout.split()
        if not left:
            break
        time.sleep(0.5)
    check(not left, f"no compiler process left ({left})")
    for name in ("w2", "w3"):
        fleet.kill(name, signal.SIGTERM)


def shared_cache(fleet):
    texts = [model(500 + i) for i in range(10)]
    fleet.start_worker("c1")
    first = fleet.wait([fleet.submit(t) for t in texts])
    check(all(j["state"] == "succeeded" for j in first), "round 1: 10 jobs succeeded")
    fleet.kill("c1", signal.SIGTERM)
    # Fresh workers with empty local caches: a hit can only come from S3.
    fleet.start_worker("c2")
    fleet.start_worker("c3")
    second = fleet.wait([fleet.submit(t) for t in texts])
    units = [u for j in second for u in j.get("units", [])]
    shared = sum(u.get("cache_hit") and u.get("cache_source") == "shared" for u in units)
    check(len(units) == 10 and shared == 10, f"round 2 on other workers: {shared}/10 served from the shared cache")
    print(f"FIGURE shared_cache_hits={shared}/10", flush=True)
    status, body = fleet.request("GET", second[0]["units"][0]["links"]["module"])
    check(status == 200 and len(body) == second[0]["units"][0]["size_bytes"], "the front serves a module from S3")
    for name in ("c2", "c3"):
        fleet.kill(name, signal.SIGTERM)


def wait_running(fleet, jid, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        j = fleet.job(jid)
        if j["state"] == "running":
            return j
        time.sleep(0.1)
    raise RuntimeError(f"job {jid} did not start: {fleet.job(jid)}")


def cancel_and_drain(fleet):
    # A cancel made on the front reaches the worker that compiles the job.
    # No grace period: a SIGTERM stops the running compile at once.
    fleet.start_worker("d1", ["--grace", "0"])
    jid = fleet.submit(model(700, depth=40))
    wait_running(fleet, jid)
    asked = time.time()
    status, _ = fleet.request("POST", f"/v1/jobs/{jid}/cancel")
    j = fleet.wait([jid], 60)[0]
    took = time.time() - asked
    check(status == 200 and j["state"] == "cancelled", f"cancel across hosts: {j['state']} after {took:.1f} s")
    check(took <= LEASE / 3 + 3, f"the worker stopped its compile within a renewal period ({took:.1f} s)")
    # SIGTERM while compiling: the job goes back to the queue, uncounted,
    # and another worker compiles it.
    jid = fleet.submit(model(701, depth=40))
    wait_running(fleet, jid)
    fleet.kill("d1", signal.SIGTERM)
    fleet.start_worker("d2")
    j = fleet.wait([jid], 300)[0]
    check(j["state"] == "succeeded" and j["attempts"] == 1,
          f"SIGTERM gives a running job back: {j['state']} on another worker, attempts {j['attempts']}")
    fleet.kill("d2", signal.SIGTERM)


def unreachable(fleet):
    def run(extra):
        env = dict(fleet.env, **extra)
        return subprocess.run([KILN, "worker", "--data-dir", os.path.join(fleet.tmp, "x")], env=env,
                              capture_output=True, text=True, timeout=120)
    r = run({"KILN_QUEUE": "postgresql://kiln@127.0.0.1:1/kiln?connect_timeout=3"})
    check(r.returncode != 0 and "PostgreSQL" in r.stderr and "KILN_QUEUE" in r.stderr,
          "PostgreSQL unreachable at start: " + r.stderr.strip().splitlines()[-1][:200])
    r = run({"AWS_ENDPOINT_URL": "http://127.0.0.1:1"})
    check(r.returncode != 0 and "object store" in r.stderr and "AWS_ENDPOINT_URL" in r.stderr,
          "S3 unreachable at start: " + r.stderr.strip().splitlines()[-1][:200])


def queue_lost(fleet):
    fleet.start_worker("q1")
    fleet.pg("stop")
    status, body = fleet.request("GET", "/v1/jobs")
    check(status == 503 and b"PostgreSQL" in body, f"queue lost: the front answers {status} naming PostgreSQL")
    status, _ = fleet.request("GET", "/healthz")
    check(status == 200, "queue lost: the front stays up")
    fleet.pg("start")
    jid = fleet.submit(model(900))
    j = fleet.wait([jid], 180)[0]
    check(j["state"] == "succeeded", "queue back: a new job succeeds (front and worker recovered)")
    fleet.kill("q1", signal.SIGTERM)


def store_lost(fleet):
    fleet.start_worker("s1")
    subprocess.run(["bash", os.path.join(ROOT, "scripts/fleet-env.sh"), "stop-store", fleet.envdir], check=True)
    status, body = 0, b""
    try:
        fleet.submit(model(950))
    except RuntimeError as e:
        status, body = int(str(e).split()[1]), str(e).encode()
    check(status == 503 and b"object store" in body, f"store lost: a submission answers {status} naming the store")
    status, _ = fleet.request("GET", "/healthz")
    check(status == 200, "store lost: the front stays up")
    subprocess.run(["bash", os.path.join(ROOT, "scripts/fleet-env.sh"), "start-store", fleet.envdir], check=True)
    j = fleet.wait([fleet.submit(model(951))], 180)[0]
    check(j["state"] == "succeeded", "store back: a new job succeeds with no restart")
    fleet.kill("s1", signal.SIGTERM)


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-fleet-test-")
    os.chmod(tmp, 0o711)  # the database server may run as another user
    fleet = Fleet(tmp)
    failures.append("did not finish")  # until it does
    try:
        fleet.start_front()
        wanted = sys.argv[2:] or ["faults", "shared_cache", "cancel_and_drain", "unreachable", "queue_lost",
                                  "store_lost"]
        for name in wanted:
            globals()[name](fleet)
        failures.remove("did not finish")
    finally:
        fleet.close()
        if not failures:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print("logs kept in " + tmp)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)


if __name__ == "__main__":
    main()
