"""Exports the test models to StableHLO in the three forms kiln reads.

usage: export_models.py [--bench-sizes] OUT_DIR [MODEL ...]

--bench-sizes exports BENCH_MODELS (GPU-sized) as text only, with no inputs
or expected outputs: the GPU scripts generate inputs with kiln and compute
the reference there.

For each model writes
  NAME.mlir        MLIR text with locations (what jax.export's mlir_module() gives)
  NAME.mlirbc      MLIR bytecode of the same module
  NAME.vhlo.mlirbc the portable artifact (VHLO bytecode, mlir_module_serialized)
  NAME.jaxexp      Exported.serialize(): jax.export's own format (and for mlp
                   mlp.cuda_cpu.jaxexp, exported for platforms ("cuda", "cpu"))
  NAME.inputs.npz  seeded inputs arg0, arg1, ...
  NAME.expected.npz JAX's outputs on this machine's CPU: out0, out1, ...
  NAME.f32.expected.npz for F32_REFERENCES: JAX's outputs with every input
                   converted to f32 (the reference of 16-bit validation)

For each shape-polymorphic model (POLY_MODELS) writes
  NAME.mlir          the export's text, symbolic dimensions and all
  NAME.jaxexp        Exported.serialize(): jax.export's own format
  NAME.cuda_cpu.jaxexp and NAME.cuda_cpu.mlir
                     the same exported for platforms ("cuda", "cpu")
  NAME.SIZES.inputs.npz, NAME.SIZES.expected.npz
                     inputs and JAX's outputs at each case's sizes, SIZES
                     like "b5" or "b5_n7"
"""
import os
import sys

import jax
import numpy as np
from jax import export

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from models import BENCH_MODELS, F32_REFERENCES, MODELS, POLY_MODELS, example_inputs, poly_inputs  # noqa: E402


def export_one(name, out_dir):
    fn, specs = MODELS[name]
    exported = export.export(jax.jit(fn))(*specs)
    base = os.path.join(out_dir, name)
    with open(base + ".mlir", "w") as f:
        f.write(exported.mlir_module())
    with open(base + ".vhlo.mlirbc", "wb") as f:
        f.write(exported.mlir_module_serialized)
    with open(base + ".jaxexp", "wb") as f:
        f.write(exported.serialize())
    if name == "mlp":
        both = export.export(jax.jit(fn), platforms=("cuda", "cpu"))(*specs)
        with open(base + ".cuda_cpu.jaxexp", "wb") as f:
            f.write(both.serialize())
    module = jax.jit(fn).lower(*specs).compiler_ir("stablehlo")
    with open(base + ".mlirbc", "wb") as f:
        module.operation.write_bytecode(f)
    inputs = example_inputs(name)
    np.savez(base + ".inputs.npz", **{f"arg{i}": a for i, a in enumerate(inputs)})
    outputs = jax.jit(fn)(*inputs)
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    np.savez(base + ".expected.npz", **{f"out{i}": np.asarray(o) for i, o in enumerate(outputs)})
    if name in F32_REFERENCES:
        wide = jax.jit(fn)(*[np.asarray(a, np.float32) for a in inputs])
        wide = wide if isinstance(wide, (tuple, list)) else (wide,)
        np.savez(base + ".f32.expected.npz", **{f"out{i}": np.asarray(o) for i, o in enumerate(wide)})


def export_x64(out_dir):
    """x64: f64 and i64 values, exported with JAX's 64-bit mode (jax_enable_x64)."""
    import jax.numpy as jnp

    def fn(x, n):
        return x * x * 2.0 + n.astype(jnp.float64) / 3.0, n * 3 + 1

    with jax.enable_x64(True):
        specs = [jax.ShapeDtypeStruct((8,), jnp.float64), jax.ShapeDtypeStruct((8,), jnp.int64)]
        exported = export.export(jax.jit(fn))(*specs)
        base = os.path.join(out_dir, "x64")
        with open(base + ".mlir", "w") as f:
            f.write(exported.mlir_module())
        inputs = [np.linspace(-3, 3, 8, dtype=np.float64), np.arange(-4, 4, dtype=np.int64) * 1000003]
        np.savez(base + ".inputs.npz", **{f"arg{i}": a for i, a in enumerate(inputs)})
        outputs = jax.jit(fn)(*inputs)
        np.savez(base + ".expected.npz", **{f"out{i}": np.asarray(o) for i, o in enumerate(outputs)})


def sizes_slug(sizes):
    return "_".join(f"{k}{v}" for k, v in sizes.items())


def export_poly(name, out_dir):
    fn, specs, cases = POLY_MODELS[name]
    base = os.path.join(out_dir, name)
    for suffix, platforms in (("", None), (".cuda_cpu", ("cuda", "cpu"))):
        exported = export.export(jax.jit(fn), platforms=platforms)(*specs)
        with open(base + suffix + ".mlir", "w") as f:
            f.write(exported.mlir_module())
        with open(base + suffix + ".jaxexp", "wb") as f:
            f.write(exported.serialize())
    for sizes in cases:
        inputs = poly_inputs(name, sizes)
        stem = f"{base}.{sizes_slug(sizes)}"
        np.savez(stem + ".inputs.npz", **{f"arg{i}": a for i, a in enumerate(inputs)})
        outputs = jax.jit(fn)(*inputs)
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        np.savez(stem + ".expected.npz", **{f"out{i}": np.asarray(o) for i, o in enumerate(outputs)})


def export_bench(name, out_dir):
    fn, specs = BENCH_MODELS[name]
    with open(os.path.join(out_dir, name + ".mlir"), "w") as f:
        f.write(export.export(jax.jit(fn))(*specs).mlir_module())


def main():
    args = sys.argv[1:]
    bench = "--bench-sizes" in args
    args = [a for a in args if a != "--bench-sizes"]
    if not args:
        sys.exit(__doc__)
    out_dir = args[0]
    os.makedirs(out_dir, exist_ok=True)
    if bench:
        for name in args[1:] or list(BENCH_MODELS):
            export_bench(name, out_dir)
        print(f"exported {len(args[1:]) or len(BENCH_MODELS)} bench-size model(s) to {out_dir}")
        return
    names = args[1:] or list(MODELS) + list(POLY_MODELS)
    for name in names:
        if name in POLY_MODELS:
            export_poly(name, out_dir)
            continue
        if name not in MODELS:
            sys.exit(f"unknown model {name!r}; models: {', '.join(list(MODELS) + list(POLY_MODELS))}")
        export_one(name, out_dir)
    if not args[1:]:
        export_x64(out_dir)
    print(f"exported {len(names)} model(s) to {out_dir}")


if __name__ == "__main__":
    main()
