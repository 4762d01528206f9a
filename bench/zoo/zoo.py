"""The model zoo: real layers at the sizes people deploy, in f32, bf16 and f16.

PROGRAMS maps a program name ("gpt2_block_bf16", "llama_decode_m8_bf16") to a
builder; build(name, size) gives the function and its arguments (layers.Arg).
size "deploy" is the benchmark size, "small" the same program shrunk for tests.
Weights are arguments, never constants, and every argument says how to fill it,
so the inputs are a pure function of (program, size, seed): inputs() makes them
from an export's description alone (numpy and ml_dtypes, no JAX).

Programs whose `source` is a library (keras-hub) need that library, which only
the zoo's own environment has (bench/zoo/setup.sh); the rest are plain JAX.
"""
import zlib

import numpy as np

DTYPES = {"f32": "float32", "bf16": "bfloat16", "f16": "float16"}

SIZES = {
    "gpt2_block": {"deploy": dict(batch=4, seq=256, dim=768, heads=12),
                   "small": dict(batch=1, seq=16, dim=64, heads=4)},
    "llama_block": {"deploy": dict(batch=1, seq=512, dim=2048, heads=32, kv_heads=8, ffn=8192),
                    "small": dict(batch=1, seq=16, dim=64, heads=4, kv_heads=2, ffn=128)},
    "llama_decode": {"deploy": dict(dim=2048, heads=32, kv_heads=8, ffn=8192, cache=1024),
                     "small": dict(dim=64, heads=4, kv_heads=2, ffn=128, cache=32)},
    "bert_block": {"deploy": dict(batch=8, seq=128, dim=768, heads=12),
                   "small": dict(batch=2, seq=16, dim=64, heads=4)},
    "vit_block": {"deploy": dict(batch=8, seq=197, dim=768, heads=12),
                  "small": dict(batch=2, seq=17, dim=64, heads=4)},
    "resnet_bottleneck": {"deploy": dict(batch=8, hw=56, channels=256),
                          "small": dict(batch=1, hw=8, channels=32)},
    "unet_block": {"deploy": dict(batch=4, hw=32, channels=320, temb=1280, groups=32),
                   "small": dict(batch=1, hw=8, channels=32, temb=16, groups=8)},
    "embed_head": {"deploy": dict(batch=4, seq=128, vocab=50257, dim=768),
                   "small": dict(batch=2, seq=8, vocab=257, dim=32)},
    "moe_topk": {"deploy": dict(tokens=512, dim=1024, experts=8, ffn=2816, top_k=2),
                 "small": dict(tokens=32, dim=32, experts=4, ffn=48, top_k=2)},
}

# Decode steps: (tokens per step, element types). The full M range in bf16,
# the middle of it in the other two.
DECODE = [(1, ("bf16",)), (4, ("bf16",)), (8, ("f32", "bf16", "f16")), (16, ("bf16",))]

# keras-hub backbones, small configurations with random weights (bf16).
KERAS_HUB = ["gpt2", "llama", "mistral", "bert", "vit", "resnet"]


class Program:
    def __init__(self, layer, dtype, source, extra=None):
        self.layer, self.dtype, self.source, self.extra = layer, dtype, source, extra


def _programs():
    out = {}
    for layer in SIZES:
        if layer == "llama_decode":
            continue
        for dt in DTYPES:
            out[f"{layer}_{dt}"] = Program(layer, dt, "jax")
    for m, dts in DECODE:
        for dt in dts:
            out[f"llama_decode_m{m}_{dt}"] = Program("llama_decode", dt, "jax", m)
    for model in KERAS_HUB:
        out[f"{model}_backbone_bf16"] = Program(model, "bf16", "keras-hub")
    return out


PROGRAMS = _programs()


def build(name, size="deploy"):
    """(function, [layers.Arg]) of a program at a size."""
    import jax.numpy as jnp

    import layers

    p = PROGRAMS[name]
    dt = getattr(jnp, DTYPES[p.dtype])
    if p.source == "keras-hub":
        import keras_hub_zoo

        return keras_hub_zoo.build(p.layer, size)
    cfg = SIZES[p.layer][size]
    if p.layer == "llama_decode":
        return layers.llama_decode(cfg, dt, p.extra if size == "deploy" else 2)
    if p.layer in ("bert_block", "vit_block"):
        return layers.encoder_block(cfg, dt, pre_norm=p.layer == "vit_block")
    return getattr(layers, p.layer)(cfg, dt)


def inputs(args, name, seed=0):
    """Seeded inputs from the arguments' JSON descriptions (export.py writes
    them): one generator per program and argument, so any subset of the zoo
    gets the same numbers on every machine."""
    import ml_dtypes

    out = []
    for i, a in enumerate(args):
        rng = np.random.default_rng([seed, zlib.crc32(name.encode()), i])
        dtype = np.dtype(getattr(ml_dtypes, a["dtype"], None) or a["dtype"])
        kind, *p = a["init"]
        shape = tuple(a["shape"])
        if kind == "int":
            v = rng.integers(int(p[0]), int(p[1]), shape)
        elif kind == "around_one":
            v = 1.0 + rng.standard_normal(shape, dtype=np.float32) * p[0]
        else:
            v = rng.standard_normal(shape, dtype=np.float32) * p[0]
        out.append(np.asarray(v).astype(dtype))
    return out
