"""Runs kiln-built modules on an IREE device and checks them against JAX.

usage: verify_modules.py DIR [--device cuda|local-task] [--runtime-dir DIR]

DIR holds modules/NAME.<target>.vmfb with kiln's metadata next to each
(scripts/gpu/prepare.sh makes such a folder). For each module this runs
iree-run-module on the device with the model's seeded inputs
(tests/models/models.py), computes the same function with JAX on this
machine (matmul precision 'highest', so a GPU reference is not TF32), and
prints the largest absolute difference, also relative to the largest
reference value. Exits 1 if any module fails to load or run, or differs by
more than its element type allows.
"""
import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "models"))

DEVICE = "cuda"
TOLERANCE = {"float32": (1e-4, 1e-3), "bfloat16": (2e-2, 2e-2), "float16": (1e-2, 1e-2)}


def runtime_tool(runtime_dir, name):
    if runtime_dir:
        return os.path.join(runtime_dir, name)
    import iree._runtime_libs as libs  # installed from the carried wheel
    return os.path.join(os.path.dirname(libs.__file__), name)


IREE_TYPES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64", "bool": "i1",
              "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64", "uint8": "ui8", "uint16": "ui16",
              "uint32": "ui32", "uint64": "ui64"}


def run_module(tool, vmfb, inputs, want, work):
    """Passes every value as raw bytes (shape and type on the flag), which
    works for bf16 and the other types .npy has no code for."""
    args = [tool, f"--module={vmfb}", f"--device={DEVICE}", "--function=main"]
    for i, a in enumerate(inputs):
        path = os.path.join(work, f"in{i}.bin")
        a.tofile(path)
        shape = "x".join(str(d) for d in a.shape)
        args.append(f"--input={shape}{'x' if shape else ''}{IREE_TYPES[str(a.dtype)]}=@{path}")
    outs = [os.path.join(work, f"out{i}.bin") for i in range(len(want))]
    args += [f"--output=@{p}" for p in outs]
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"iree-run-module failed ({proc.returncode}): {proc.stderr.strip()[:2000]}")
    return [np.fromfile(p, dtype=w.dtype).reshape(w.shape) for p, w in zip(outs, want)]


def compare(got, want):
    g = np.asarray(got).astype(np.float64)
    w = np.asarray(want).astype(np.float64)
    if g.shape != w.shape:
        return float("inf"), float("inf"), False
    abs_err = np.abs(g - w)
    # Relative to the largest reference magnitude: element-wise relative
    # error is meaningless next to values that are nearly zero.
    scale = max(float(np.abs(w).max(initial=0)), 1e-30)
    atol, rtol = TOLERANCE.get(str(np.asarray(want).dtype), (0, 0))
    ok = bool(np.all(abs_err <= atol + rtol * np.abs(w)))
    return float(abs_err.max(initial=0)), float(abs_err.max(initial=0)) / scale, ok


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("carry")
    parser.add_argument("--runtime-dir")
    parser.add_argument("--device", default="cuda", help="IREE device (local-task to try CPU modules)")
    opts = parser.parse_args()
    global DEVICE
    DEVICE = opts.device

    import jax
    jax.config.update("jax_default_matmul_precision", "highest")
    from models import MODELS, example_inputs

    tool = runtime_tool(opts.runtime_dir, "iree-run-module")
    print(f"device: {jax.devices()[0].device_kind}; jax {jax.__version__}")
    rows, failed = [], False
    for vmfb in sorted(glob.glob(os.path.join(opts.carry, "modules", "*.vmfb"))):
        name = os.path.basename(vmfb).split(".")[0]
        meta = json.load(open(vmfb[:-5] + ".json"))
        fn, _ = MODELS[name]
        inputs = example_inputs(name)
        want = jax.jit(fn)(*inputs)
        want = [np.asarray(w) for w in (want if isinstance(want, (tuple, list)) else (want,))]
        with tempfile.TemporaryDirectory() as work:
            try:
                got = run_module(tool, vmfb, inputs, want, work)
            except RuntimeError as e:
                rows.append((name, meta["target"]["spec"], "FAILED", str(e)))
                failed = True
                continue
        worst_abs, worst_rel, all_ok = 0.0, 0.0, True
        for g, w in zip(got, want):
            a, r, ok = compare(g, w)
            worst_abs, worst_rel, all_ok = max(worst_abs, a), max(worst_rel, r), all_ok and ok
        failed |= not all_ok
        rows.append((name, meta["target"]["spec"], "ok" if all_ok else "MISMATCH",
                     f"max abs err {worst_abs:.3g}, relative to max |ref| {worst_rel:.3g}"))
    for row in rows:
        print("  {:<16} {:<10} {:<9} {}".format(*row))
    if not rows:
        print("no modules found")
        failed = True
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
