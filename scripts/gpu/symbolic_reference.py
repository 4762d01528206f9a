"""Exports the symbolic-batch MLP (classifier_poly: batch "b") and JAX's
reference for the symbolic-batch GPU check.

usage: symbolic_reference.py OUT_DIR [BATCH ...]   (default batches 1 5 64)

Writes
  OUT_DIR/classifier_poly.mlir   the export's text (batch dimension "b")
  OUT_DIR/b<N>/arg<i>.npy        seeded inputs at batch N
  OUT_DIR/b<N>/out<i>.npy        JAX's outputs on CPU at matmul precision 'highest'
"""
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax import export  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "models"))
from models import POLY_MODELS, poly_inputs  # noqa: E402

NAME = "classifier_poly"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out_dir = sys.argv[1]
    batches = [int(b) for b in sys.argv[2:]] or [1, 5, 64]
    os.makedirs(out_dir, exist_ok=True)
    fn, specs, _ = POLY_MODELS[NAME]
    exported = export.export(jax.jit(fn))(*specs)
    with open(os.path.join(out_dir, NAME + ".mlir"), "w") as f:
        f.write(exported.mlir_module())
    for b in batches:
        folder = os.path.join(out_dir, f"b{b}")
        os.makedirs(folder, exist_ok=True)
        inputs = poly_inputs(NAME, {"b": b})
        with jax.default_matmul_precision("highest"):
            outputs = jax.jit(fn)(*inputs)
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        for i, a in enumerate(inputs):
            np.save(os.path.join(folder, f"arg{i}.npy"), a)
        for i, o in enumerate(outputs):
            np.save(os.path.join(folder, f"out{i}.npy"), np.asarray(o))
    print(f"exported {NAME} and its reference at batch {', '.join(map(str, batches))} to {out_dir}")


if __name__ == "__main__":
    main()
