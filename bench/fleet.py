"""Fleet throughput: one `kiln serve --workers 0` front, N `kiln worker`s
(N = 1, 2, 4), a batch of small distinct compile jobs, on a real PostgreSQL
and SeaweedFS S3 started by scripts/fleet-env.sh.

  .venv/bin/python bench/fleet.py build/kiln [JOBS] [CORE_SHARE]

Each worker (and the compilers it starts) runs in a cgroup of its own with
CORE_SHARE of one core (default: the machine's cores / 4, so four workers fit
on it without contending): the ratios are about the fleet (queue, leases,
store), not about how many cores the host has. Prints jobs per minute,
efficiency throughput_N / (N x throughput_1), and where the time went.
Needs root for the cgroups; without it, workers are not limited (said so).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fleet"))
import fleet_test  # noqa: E402  (the same environment and client as the fleet test)

CGROUP = "/sys/fs/cgroup/cpu"


def limited(name, share):
    """A cgroup (v1 cpu controller) with `share` of a core, or None."""
    path = os.path.join(CGROUP, "kiln-bench-" + name)
    try:
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "cpu.cfs_period_us"), "w") as f:
            f.write("100000")
        with open(os.path.join(path, "cpu.cfs_quota_us"), "w") as f:
            f.write(str(int(100000 * share)))
        return path
    except OSError:
        return None


def main():
    kiln = os.path.abspath(sys.argv[1])
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    share = float(sys.argv[3]) if len(sys.argv) > 3 else (os.cpu_count() or 2) / 4
    fleet_test.KILN = kiln
    tmp = tempfile.mkdtemp(prefix="kiln-fleet-bench-")
    os.chmod(tmp, 0o711)
    fleet = fleet_test.Fleet(tmp)
    results = {}
    try:
        fleet.start_front()
        for n in (1, 2, 4):
            names = [f"n{n}w{i}" for i in range(n)]
            groups = []
            for name in names:
                group = limited(name, share)
                groups.append(group)
                fleet.start_worker(name)
                if group:
                    # The worker's threads now; its compilers inherit the group.
                    for task in os.listdir(f"/proc/{fleet.procs[name].pid}/task"):
                        with open(os.path.join(group, "tasks"), "w") as f:
                            f.write(task)
            texts = [fleet_test.model(1000 * n + i) for i in range(jobs)]
            start = time.time()
            ids = [fleet.submit(t) for t in texts]
            done = fleet.wait(ids, 3600)
            wall = time.time() - start
            ok = sum(j["state"] == "succeeded" for j in done)
            compile_s = sum(u.get("compile_seconds", 0) for j in done for u in j.get("units", []))
            queued = sorted(j.get("queued_seconds", 0) for j in done)
            results[n] = jobs / wall * 60
            print(f"workers={n} jobs={ok}/{jobs} wall={wall:.1f}s throughput={results[n]:.1f} jobs/min "
                  f"compile_seconds_sum={compile_s:.1f} queued_p50={queued[len(queued) // 2]:.1f}s "
                  f"limited={'%.2f core each' % share if all(groups) else 'no (not root)'}", flush=True)
            for name in names:
                fleet.kill(name, fleet_test.signal.SIGTERM)
            for group in groups:
                if group:
                    subprocess.run(["rmdir", group], check=False)
        for n in (1, 2, 4):
            print(f"efficiency N={n}: {results[n] / (n * results[1]):.2f}")
    finally:
        fleet.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
