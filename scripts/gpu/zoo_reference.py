"""JAX's side of the model zoo's comparison, for one program on this machine.

usage: zoo_reference.py OUT_ROOT PROGRAM... [--warmup N] [--reps N] [--min-time S]
                        [--budget S]

Each PROGRAM is the path of an export without extension (bench/zoo/export.py
wrote PROGRAM.jaxexp and PROGRAM.json); its results go to OUT_ROOT/NAME/. One
process does them all (JAX starts once); a program whose jax.json, inputs and
outputs are there (or whose jax.error is) is skipped, and none is started after
--budget seconds. The serialized Exported is deserialized and
called: the very program kiln compiled, with no zoo library needed here. The
seeded inputs come from PROGRAM.json (bench/zoo/zoo.py, inputs()); they are
saved as inputs.npz (bf16 as raw 2-byte values, which kiln types by the
module's signature) and JAX's outputs as expected.npz. Then XLA is
timed on device-resident inputs two ways (scripts/gpu/jax_reference.py):
amortized (back-to-back calls, one block_until_ready) and per-call p50.
Writes jax.json (last, so it marks the program done).
"""
import argparse
import json
import os
import sys
import time

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
sys.path.insert(0, os.path.join(here, "..", "..", "bench", "zoo"))

from jax_reference import amortized_ms, p50_ms  # noqa: E402
import zoo  # noqa: E402


def reference(program, out_dir, opts):
    import jax
    from jax import export

    desc = json.load(open(program + ".json"))
    with open(program + ".jaxexp", "rb") as f:
        exported = export.deserialize(bytearray(f.read()))
    os.makedirs(out_dir, exist_ok=True)
    start = time.monotonic()
    host = zoo.inputs(desc["args"], desc["name"])
    np.savez(os.path.join(out_dir, "inputs.npz"), **{f"arg{i}": a for i, a in enumerate(host)})
    args = [jax.device_put(a) for a in host]
    fn = jax.jit(exported.call)
    want = fn(*args)
    want = want if isinstance(want, (tuple, list)) else (want,)
    np.savez(os.path.join(out_dir, "expected.npz"), **{f"out{i}": np.asarray(w) for i, w in enumerate(want)})
    reference_s = time.monotonic() - start
    p50 = p50_ms(fn, args, opts.warmup, opts.reps)
    amortized = amortized_ms(fn, args, min_seconds=opts.min_time)
    doc = {"program": desc["name"], "xla_ms": amortized, "xla_p50_ms": p50, "reference_s": reference_s,
           "device": jax.devices()[0].device_kind, "platform": jax.devices()[0].platform,
           "jax": jax.__version__, "exported_with_jax": desc.get("jax")}
    with open(os.path.join(out_dir, "jax.json.tmp"), "w") as f:
        json.dump(doc, f)
    os.replace(os.path.join(out_dir, "jax.json.tmp"), os.path.join(out_dir, "jax.json"))
    return doc


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_root")
    parser.add_argument("programs", nargs="+")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--min-time", type=float, default=0.1)
    parser.add_argument("--budget", type=float, default=1e9)
    opts = parser.parse_args()
    start = time.monotonic()
    for program in opts.programs:
        out_dir = os.path.join(opts.out_root, os.path.basename(program))
        done = all(os.path.exists(os.path.join(out_dir, f)) for f in ("jax.json", "inputs.npz", "expected.npz"))
        if done or os.path.exists(os.path.join(out_dir, "jax.error")):
            continue
        if time.monotonic() - start > opts.budget:
            print("zoo_reference.py: time budget spent; run again to go on", file=sys.stderr)
            return 0
        try:
            doc = reference(program, out_dir, opts)
            print(f"jax: {doc['program']} {doc['xla_ms']:.4f} ms amortized, {doc['xla_p50_ms']:.4f} ms p50",
                  file=sys.stderr)
        except Exception as e:  # one program's failure must not stop the zoo
            os.makedirs(out_dir, exist_ok=True)
            with open(os.path.join(out_dir, "jax.error"), "w") as f:
                f.write(f"{type(e).__name__}: {e}\n")
            print(f"jax: {os.path.basename(program)} FAILED: {type(e).__name__}: {e}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
