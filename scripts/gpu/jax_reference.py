"""JAX's side of the GPU comparison, for one model on this machine's GPU.

usage: jax_reference.py MODEL INPUTS.npz EXPECTED_OUT.npz [--warmup N] [--reps N]

Reads the inputs kiln generated (kiln run saves inputs.npz; bf16 is stored as
raw 2-byte values and is viewed as bf16 here), computes the model with JAX at
matmul precision 'highest' and saves the outputs as the reference. Then
times XLA two ways, at XLA's default precision and at 'highest':
- amortized: many back-to-back calls on device-resident inputs and one
  block_until_ready at the end, the mean per call (the figure deployments
  see, and what `kiln tune measure` reports for IREE);
- p50: one call per sample, waiting for each result, after warm-up.
Prints one JSON line.
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


def amortized_ms(fn, args, min_seconds=0.5, repetitions=3):
    """Median over repetitions of the mean time per call of back-to-back calls."""
    for _ in range(5):
        call(fn, args)
    means = []
    for _ in range(repetitions):
        n, elapsed = 10, 0.0
        while True:
            start = time.perf_counter()
            out = None
            for _ in range(n):
                out = fn(*args)
            for o in out if isinstance(out, (tuple, list)) else (out,):
                o.block_until_ready()
            elapsed = time.perf_counter() - start
            if elapsed >= min_seconds:
                break
            n *= 2
        means.append(elapsed / n * 1000)
    return float(np.median(means))


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
        highest_amortized = amortized_ms(exact, args)
    fast = jax.jit(fn)
    default = p50_ms(fast, args, opts.warmup, opts.reps)
    default_amortized = amortized_ms(fast, args)
    print(json.dumps({"model": opts.model, "xla_p50_ms_default": default, "xla_p50_ms_highest": highest,
                      "xla_default_ms": default_amortized, "xla_highest_ms": highest_amortized,
                      "device": jax.devices()[0].device_kind, "jax": jax.__version__}))


if __name__ == "__main__":
    main()
