"""The cost of a container per compile job, measured in one run: the same
input compiled by `kiln compile --executor docker` and `--executor local`
(cache off), alternating, median of N each. Needs kiln's CPU image
(scripts/build-images.sh) and a Docker engine.

usage: container_cost.py KILN_BINARY MODEL.mlir [RUNS]
"""
import os
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
    kiln, model = sys.argv[1], sys.argv[2]
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    out = tempfile.mkdtemp(prefix="kiln-bench-")
    base = [kiln, "compile", model, "-t", "cpu", "--no-cache", "-o", out]
    docker, local = [], []
    for _ in range(runs):
        local.append(timed(base + ["--executor", "local"]))
        docker.append(timed(base + ["--executor", "docker"]))
    d, l = statistics.median(docker), statistics.median(local)
    print(f"compile {os.path.basename(model)} for cpu, cache off, median of {runs}:")
    print(f"  local executor      {l * 1000:8.1f} ms")
    print(f"  docker executor     {d * 1000:8.1f} ms")
    print(f"  ratio               {d / l:8.3f}   (container overhead {(d - l) * 1000:.0f} ms per job)")


if __name__ == "__main__":
    main()
