"""Writes a JAX export of about SIZE_MB of MLIR text whose bulk is weights
baked in as constants, the way a model exported with its parameters looks.

usage: make_big_export.py OUT.mlir [SIZE_MB]
"""
import sys

import jax
import jax.numpy as jnp
import numpy as np
from jax import export


def main():
    out = sys.argv[1]
    size_mb = float(sys.argv[2]) if len(sys.argv) > 2 else 100
    # Each 1024x1024 f32 weight prints as 8 MiB of hex.
    n = max(1, int(round(size_mb / 8)))
    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((1024, 1024)).astype(np.float32) for _ in range(n)]

    def model(x):
        for w in weights:
            x = jnp.tanh(x @ w)
        return x

    exported = export.export(jax.jit(model))(jax.ShapeDtypeStruct((8, 1024), jnp.float32))
    with open(out, "w") as f:
        f.write(exported.mlir_module())


if __name__ == "__main__":
    main()
