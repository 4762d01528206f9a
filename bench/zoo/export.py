"""Exports the model zoo (bench/zoo/zoo.py) for kiln and for JAX.

usage: export.py OUT_DIR [--size deploy|small] [--source jax|keras-hub|all] [--no-mlir] [NAME ...]

For each program writes
  NAME.jaxexp  Exported.serialize() for platforms ("cuda", "rocm", "cpu"): kiln
               compiles it for cpu, cuda:* and rocm:* targets (it binds the
               platform), and JAX deserializes and calls the very same program
               for the reference and XLA's timing, with no zoo library needed;
  NAME.mlir    the StableHLO text exported for "cuda" alone, for targets with
               no JAX platform (vulkan) and for reading (--no-mlir: not written);
  NAME.json    the program's description: layer, element type, source, sizes,
               and each argument's name, shape, type and how zoo.inputs()
               fills it.
Every program is exported at matmul precision "highest" (f32 contractions in
full f32 on both sides, kiln's default policy). Names default to every program
of the chosen source ("jax", the default: those written in plain JAX; "all"
needs the zoo environment, bench/zoo/setup.sh).
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "jax")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
from jax import export  # noqa: E402

import zoo  # noqa: E402


def export_one(name, size, out_dir, mlir=True):
    fn, args = zoo.build(name, size)
    specs = [a.spec() for a in args]
    base = os.path.join(out_dir, name)
    with jax.default_matmul_precision("highest"):
        both = export.export(jax.jit(fn), platforms=("cuda", "rocm", "cpu"))(*specs)
        if mlir:
            with open(base + ".mlir", "w") as f:
                f.write(export.export(jax.jit(fn), platforms=("cuda",))(*specs).mlir_module())
    with open(base + ".jaxexp", "wb") as f:
        f.write(both.serialize())
    p = zoo.PROGRAMS[name]
    doc = {"name": name, "layer": p.layer, "dtype": p.dtype, "source": p.source, "size": size,
           "config": zoo.SIZES.get(p.layer, {}).get(size), "decode_m": p.extra,
           "args": [a.to_json() for a in args], "outputs": len(both.out_avals),
           "jax": jax.__version__}
    with open(base + ".json", "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir")
    parser.add_argument("names", nargs="*")
    parser.add_argument("--size", choices=("deploy", "small"), default="deploy")
    parser.add_argument("--source", choices=("jax", "keras-hub", "all"), default="jax")
    parser.add_argument("--no-mlir", action="store_true",
                        help="skip NAME.mlir (only targets with no JAX platform, such as vulkan, compile it)")
    opts = parser.parse_intermixed_args()
    unknown = [n for n in opts.names if n not in zoo.PROGRAMS]
    if unknown:
        sys.exit(f"export.py: unknown program(s) {', '.join(unknown)}; the zoo has: {', '.join(zoo.PROGRAMS)}")
    names = opts.names or [n for n, p in zoo.PROGRAMS.items() if opts.source in ("all", p.source)]
    os.makedirs(opts.out_dir, exist_ok=True)
    for name in names:
        start = time.monotonic()
        export_one(name, opts.size, opts.out_dir, mlir=not opts.no_mlir)
        print(f"exported {name} ({time.monotonic() - start:.1f} s)", file=sys.stderr)
    print(f"exported {len(names)} program(s) to {opts.out_dir}")


if __name__ == "__main__":
    main()
