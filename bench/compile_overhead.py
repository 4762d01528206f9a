"""Measures kiln's own cost on top of the IREE tools, in one run:

1. `kiln compile` against bare `iree-compile` with the same flags on the same
   input (kiln's exact command is read back from its metadata), alternating
   the two, median of N runs each; goal: ratio at most 1.05.
2. `kiln inspect` of a ~100 MB constant-heavy JAX export, end to end
   (process start, mmap, scan), median of N runs; goal: at least 200 MB/s.

usage: compile_overhead.py KILN_BINARY MODEL.mlir BIG.mlir [RUNS]
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(argv):
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    kiln, model, big = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 7
    work = tempfile.mkdtemp(prefix="kiln-bench-")
    try:
        out = os.path.join(work, "out")
        subprocess.run([kiln, "compile", model, "--target", "cpu", "-o", out], check=True, stdout=subprocess.DEVNULL)
        meta_file = [f for f in os.listdir(out) if f.endswith(".json")][0]
        command = json.load(open(os.path.join(out, meta_file)))["compiler_command"]
        bare = command[:-1] + [os.path.join(work, "bare.vmfb")]
        kiln_times, bare_times = [], []
        for _ in range(runs):
            bare_times.append(timed(bare))
            kiln_times.append(timed([kiln, "compile", model, "--target", "cpu", "-o", out]))
        k, b = statistics.median(kiln_times), statistics.median(bare_times)
        print(f"compile {os.path.basename(model)} for cpu, median of {runs}:")
        print(f"  bare iree-compile  {b * 1000:8.1f} ms")
        print(f"  kiln compile       {k * 1000:8.1f} ms")
        print(f"  ratio              {k / b:8.3f}   (goal <= 1.05)")

        size = os.path.getsize(big)
        times = [timed([kiln, "inspect", big]) for _ in range(runs)]
        t = statistics.median(times)
        print(f"inspect {os.path.basename(big)} ({size / 1e6:.1f} MB), median of {runs}:")
        print(f"  {t * 1000:8.1f} ms = {size / t / 1e6:8.0f} MB/s   (goal >= 200 MB/s)")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
