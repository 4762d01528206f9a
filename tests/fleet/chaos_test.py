"""Chaos on a fleet: one `kiln serve --workers 0` front and three `kiln worker`s on a real
PostgreSQL and S3 store (scripts/fleet-env.sh, loopback), while a driver sends SIGTERM and
SIGKILL to fronts and workers at random and starts them again.

  chaos_test.py KILN_BINARY [SECONDS]   (default 60 s of chaos; the whole run is bounded)

Then every accepted job must have ended: `succeeded` with all its units, each module's
sha256 checked through the front, or `failed` with a reason; no job is succeeded without
its units; once every process is stopped no compiler is left and no working folder
(staging, a stale output) remains. Prints the figures.
"""
import hashlib
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fleet_test as ft  # noqa: E402  (the same Fleet harness; KILN from argv[1])

CHAOS_SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 60.0
JOBS = 120
WORKERS = ["w1", "w2", "w3"]
GRACE = "2"


def start(fleet, name):
    if name == "front":
        port_file = os.path.join(fleet.tmp, "port")
        if os.path.exists(port_file):
            os.remove(port_file)  # the new front writes its own
        fleet.start_front()
        return
    env = {"KILN_CACHE_DIR": os.path.join(fleet.tmp, "cache-" + name)}
    fleet.spawn(name, [ft.KILN, "worker", "--data-dir", os.path.join(fleet.tmp, name), "--lease", str(ft.LEASE),
                       "--executor", "local", "--grace", GRACE], env)


def submit_all(fleet, ids, stop):
    """Submits JOBS distinct programs; a submission the front dropped (it was killed) is retried."""
    for n in range(JOBS):
        while not stop.is_set():
            try:
                ids.append(fleet.submit(ft.model(f"{n + 1}", depth=2)))
                break
            except Exception:  # noqa: BLE001  the front is down or restarting
                time.sleep(0.2)


def chaos(fleet, rng, until):
    kills = {"SIGTERM": 0, "SIGKILL": 0}
    while time.time() < until:
        time.sleep(rng.uniform(1.0, 3.0))
        name = rng.choice(["front"] + WORKERS)
        sig = rng.choice([signal.SIGTERM, signal.SIGKILL])
        if name not in fleet.procs:
            continue
        fleet.kill(name, sig)
        kills[sig.name] += 1
        time.sleep(rng.uniform(0.2, 1.0))
        start(fleet, name)
    return kills


def wait_all(fleet, ids, timeout):
    deadline = time.time() + timeout
    jobs = []
    while time.time() < deadline:
        try:
            jobs = [fleet.job(j) for j in ids]
        except Exception:  # noqa: BLE001  a request the front dropped: asked again
            time.sleep(0.5)
            continue
        if all(j["state"] in ("succeeded", "failed", "cancelled") for j in jobs):
            return jobs
        time.sleep(1)
    raise RuntimeError("jobs did not end: " + str({s: sum(j["state"] == s for j in jobs) for s in
                                                   ("queued", "running", "succeeded", "failed")}))


def compilers(tmp):
    out = subprocess.run(["pgrep", "-f", "iree-compile.*" + tmp], capture_output=True, text=True).stdout.split()
    return [p for p in out if p.strip()]


def stray_folders(tmp):
    stray = []
    for name in WORKERS + ["front"]:
        for root, dirs, _ in os.walk(os.path.join(tmp, name)):
            stray += [os.path.join(root, d) for d in dirs if d.startswith(".kiln-staging-") or ".stale-" in d]
    return stray


def main():
    rng = random.Random(int(os.environ.get("KILN_CHAOS_SEED", str(int(time.time())))))
    tmp = tempfile.mkdtemp(prefix="kiln-chaos-", dir="/tmp")
    os.chmod(tmp, 0o711)  # the PostgreSQL server may run as another user (as root, fleet-env.sh does)
    try:
        fleet = ft.Fleet(tmp)
    except Exception:
        subprocess.run(["bash", os.path.join(ft.ROOT, "scripts/fleet-env.sh"), "stop", os.path.join(tmp, "env")])
        subprocess.run(["rm", "-rf", tmp])
        raise
    started = time.time()
    try:
        fleet.start_front()
        for w in WORKERS:
            start(fleet, w)
        ids, stop = [], threading.Event()
        submitter = threading.Thread(target=submit_all, args=(fleet, ids, stop))
        submitter.start()
        kills = chaos(fleet, rng, time.time() + CHAOS_SECONDS)
        for name in ["front"] + WORKERS:
            if name not in fleet.procs:
                start(fleet, name)
        # Submissions go on until every job is accepted (bounded).
        submitter.join(timeout=90)
        stop.set()
        submitter.join()
        jobs = wait_all(fleet, ids, timeout=150)
        states = {s: sum(j["state"] == s for j in jobs) for s in ("succeeded", "failed", "cancelled")}
        ft.check(len(ids) == JOBS, f"{len(ids)} of {JOBS} jobs accepted")
        ft.check(all(j["state"] in ("succeeded", "failed") for j in jobs), f"every job ended: {states}")
        bad = [j["id"] for j in jobs if j["state"] == "succeeded" and
               (len(j.get("units", [])) != 1 or not all(u.get("ok") for u in j["units"]))]
        ft.check(not bad, f"no job succeeded without all its units ({len(bad)} did)")
        reasons = [j for j in jobs if j["state"] == "failed" and not j.get("error", {}).get("message")]
        ft.check(not reasons, f"every failed job says why ({len(reasons)} do not)")
        mismatched = 0
        for j in jobs:
            for u in j.get("units", []) if j["state"] == "succeeded" else []:
                status, body = fleet.request("GET", u["links"]["module"])
                mismatched += status != 200 or hashlib.sha256(body).hexdigest() != u["sha256"]
        ft.check(mismatched == 0, f"every module downloads with its sha256 ({mismatched} do not)")
        for name in list(fleet.procs):
            fleet.kill(name, signal.SIGTERM)
        deadline = time.time() + 2
        while compilers(tmp) and time.time() < deadline:
            time.sleep(0.05)
        ft.check(not compilers(tmp), "no compiler left once every process stopped")
        stray = stray_folders(tmp)
        ft.check(not stray, f"no stray working folder ({stray[:3]})")
        attempts = sum(j["attempts"] for j in jobs)
        print(f"chaos: {CHAOS_SECONDS:.0f} s, {kills['SIGTERM']} SIGTERM and {kills['SIGKILL']} SIGKILL of 1 front and "
              f"3 workers; {len(ids)} jobs: {states['succeeded']} succeeded, {states['failed']} failed; "
              f"{attempts} starts in all; {time.time() - started:.0f} s in all", flush=True)
    finally:
        fleet.close()
        subprocess.run(["rm", "-rf", tmp])
    if ft.failures:
        print(f"{len(ft.failures)} check(s) failed", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
