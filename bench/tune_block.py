"""Exports a GPT-2 style transformer block (f32) for `kiln tune`'s budgets.

usage: tune_block.py OUT.mlir [--batch 4] [--tokens 512] [--width 1024]

Pre-norm block: layernorm, causal multi-head self-attention (16 heads),
residual, layernorm, MLP (4x width, tanh GELU), residual. The weights are
arguments, so the program carries no large constants.
"""
import argparse

import jax
import jax.numpy as jnp
from jax import export


def layernorm(x, g, b):
    m = jnp.mean(x, axis=-1, keepdims=True)
    v = jnp.mean((x - m) ** 2, axis=-1, keepdims=True)
    return (x - m) * jax.lax.rsqrt(v + 1e-5) * g + b


def block(x, ln1_g, ln1_b, w_qkv, b_qkv, w_o, b_o, ln2_g, ln2_b, w_fc, b_fc, w_proj, b_proj, heads=16):
    batch, tokens, width = x.shape
    h = layernorm(x, ln1_g, ln1_b)
    qkv = h @ w_qkv + b_qkv
    q, k, v = jnp.split(qkv, 3, axis=-1)
    split = lambda t: t.reshape(batch, tokens, heads, width // heads).transpose(0, 2, 1, 3)
    q, k, v = split(q), split(k), split(v)
    scores = (q @ k.transpose(0, 1, 3, 2)) / jnp.sqrt(jnp.float32(width // heads))
    mask = jnp.tril(jnp.ones((tokens, tokens), dtype=bool))
    scores = jnp.where(mask, scores, jnp.float32(-1e9))
    attn = jax.nn.softmax(scores, axis=-1) @ v
    attn = attn.transpose(0, 2, 1, 3).reshape(batch, tokens, width)
    x = x + attn @ w_o + b_o
    h = layernorm(x, ln2_g, ln2_b)
    h = jax.nn.gelu(h @ w_fc + b_fc, approximate=True)
    return x + h @ w_proj + b_proj


def specs(batch, tokens, width):
    s = lambda *shape: jax.ShapeDtypeStruct(shape, jnp.float32)
    return (s(batch, tokens, width), s(width), s(width), s(width, 3 * width), s(3 * width), s(width, width), s(width),
            s(width), s(width), s(width, 4 * width), s(4 * width), s(4 * width, width), s(width))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--width", type=int, default=1024)
    a = p.parse_args()
    exported = export.export(jax.jit(block))(*specs(a.batch, a.tokens, a.width))
    with open(a.out, "w") as f:
        f.write(exported.mlir_module())


if __name__ == "__main__":
    main()
