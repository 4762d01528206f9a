"""Measures, in one run, the two figures of the cache and the worker pool:

1. a cache hit of `kiln compile` against the cold compile of the same input
   (an empty cache each cold run; median of N each); goal: hit <= 50 ms;
2. a matrix of 8 compile units (4 models x 2 targets, cache off) run on the
   worker pool (--jobs = CPUs) against one after another (--jobs 1), median
   of 3 each; goal: ratio <= 0.6.

usage: cache_and_matrix.py KILN_BINARY MODELS_DIR [RUNS]
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time


def timed(argv, env):
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main():
    kiln, models = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    work = tempfile.mkdtemp(prefix="kiln-bench-")
    env = dict(os.environ, KILN_CACHE_DIR=os.path.join(work, "cache"))
    try:
        model = os.path.join(models, "attention.mlir")
        cold, hot = [], []
        for i in range(runs):
            shutil.rmtree(env["KILN_CACHE_DIR"], ignore_errors=True)
            cold.append(timed([kiln, "compile", model, "-t", "cpu", "-o", os.path.join(work, f"cold{i}")], env))
            hot.append(timed([kiln, "compile", model, "-t", "cpu", "-o", os.path.join(work, f"hot{i}")], env))
        c, h = statistics.median(cold), statistics.median(hot)
        print(f"kiln compile attention.mlir for cpu, median of {runs}:")
        print(f"  cold (empty cache)  {c * 1000:8.1f} ms")
        print(f"  cache hit           {h * 1000:8.1f} ms   (goal <= 50 ms)")

        units = [os.path.join(models, f"{m}.mlir") for m in ("mlp", "conv", "attention", "gemm_f32")]
        targets = ["-t", "cpu", "-t", "cuda:a100"]
        cpus = len(os.sched_getaffinity(0))
        serial, parallel = [], []
        for i in range(3):
            serial.append(timed([kiln, "compile", *units, *targets, "--no-cache", "-j", "1", "-o",
                                 os.path.join(work, f"s{i}")], env))
            parallel.append(timed([kiln, "compile", *units, *targets, "--no-cache", "-j", str(cpus), "-o",
                                   os.path.join(work, f"p{i}")], env))
        s, p = statistics.median(serial), statistics.median(parallel)
        print(f"matrix of 8 units (4 models x cpu, cuda:a100), cache off, median of 3, {cpus} CPUs:")
        print(f"  one after another (-j 1)   {s:6.2f} s")
        print(f"  worker pool (-j {cpus})        {p:6.2f} s")
        print(f"  ratio                      {p / s:6.3f}   (goal <= 0.6)")
    finally:
        shutil.rmtree(work)


if __name__ == "__main__":
    main()
