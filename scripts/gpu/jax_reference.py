"""JAX's side of the GPU comparison, for one model on this machine's GPU.

usage: jax_reference.py MODEL INPUTS.npz EXPECTED_OUT.npz [--warmup N] [--reps N]

Reads the inputs kiln generated (kiln run saves inputs.npz; bf16 is stored as
raw 2-byte values and is viewed as bf16 here), computes the model with JAX at
matmul precision 'highest' and saves the outputs as the reference. Then
times XLA the way kiln bench times IREE: one call per sample, waiting for the
result (block_until_ready), after warm-up; prints one JSON line with the p50
at XLA's default precision and at 'highest'.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "models"))


def call(fn, args):
    out = fn(*args)
    for o in out if isinstance(out, (tuple, list)) else (out,):
        o.block_until_ready()


def p50_ms(fn, args, warmup, reps):
    for _ in range(warmup):
        call(fn, args)
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        call(fn, args)
        samples.append((time.perf_counter() - start) * 1000)
    return float(np.median(samples))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("expected")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--reps", type=int, default=200)
    opts = parser.parse_args()

    import jax
    import ml_dtypes
    from models import BENCH_MODELS

    fn, specs = BENCH_MODELS[opts.model]
    archive = np.load(opts.inputs)
    args = []
    for name, spec in zip(archive.files, specs):
        a = archive[name]
        if a.dtype.kind == "V":
            a = a.view(ml_dtypes.bfloat16 if np.dtype(spec.dtype) == np.dtype(ml_dtypes.bfloat16) else spec.dtype)
        args.append(jax.device_put(a))

    with jax.default_matmul_precision("highest"):
        exact = jax.jit(fn)
        want = exact(*args)
        want = want if isinstance(want, (tuple, list)) else (want,)
        np.savez(opts.expected, **{f"out{i}": np.asarray(w) for i, w in enumerate(want)})
        highest = p50_ms(exact, args, opts.warmup, opts.reps)
    default = p50_ms(jax.jit(fn), args, opts.warmup, opts.reps)
    print(json.dumps({"model": opts.model, "xla_p50_ms_default": default, "xla_p50_ms_highest": highest,
                      "device": jax.devices()[0].device_kind, "jax": jax.__version__}))


if __name__ == "__main__":
    main()
