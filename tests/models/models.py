"""Small JAX programs that kiln's tests, examples and GPU checks export to StableHLO.

Each model is a function and the abstract shapes of its arguments; inputs are
seeded so that every machine generates the same numbers.
"""
import jax
import jax.numpy as jnp
import numpy as np


def mlp(x, w1, b1, w2):
    h = jax.nn.gelu(x @ w1 + b1)
    return h @ w2


def gemm_f32(a, b):
    return a @ b


def gemm_bf16(a, b):
    return jnp.matmul(a, b, preferred_element_type=jnp.float32).astype(jnp.bfloat16)


def layernorm_gelu(x, gamma, beta):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.var(x, axis=-1, keepdims=True)
    y = (x - mean) * jax.lax.rsqrt(var + 1e-5) * gamma + beta
    return jax.nn.gelu(y)


def conv(x, k1, k2):
    dn = ("NHWC", "HWIO", "NHWC")
    y = jax.lax.conv_general_dilated(x, k1, (1, 1), "SAME", dimension_numbers=dn)
    y = jax.nn.relu(y)
    y = jax.lax.conv_general_dilated(y, k2, (2, 2), "SAME", dimension_numbers=dn)
    return jnp.mean(jax.nn.relu(y), axis=(1, 2))


def attention(x, wq, wk, wv):
    q, k, v = x @ wq, x @ wk, x @ wv
    scores = jnp.einsum("bqd,bkd->bqk", q, k) / jnp.sqrt(q.shape[-1]).astype(x.dtype)
    return jnp.einsum("bqk,bkd->bqd", jax.nn.softmax(scores, axis=-1), v)


def mixed_types(flags, counts, scale):
    """Several element types in one signature: i1, ui8, i32, f16."""
    picked = jnp.where(flags, counts.astype(jnp.int32), 0)
    return picked.sum(), (scale * 2).astype(jnp.float16)


def classifier(x, w1, b1, w2, b2):
    """An MLP ending in log_softmax: its broadcasts over the batch chain."""
    h = jax.nn.relu(x @ w1 + b1)
    return jax.nn.log_softmax(h @ w2 + b2)


def two_dims(x, y):
    return jnp.tanh(x) @ y + jnp.sum(x, axis=1, keepdims=True)


def attention_scores_alg(q, k):
    """Attention probabilities in bf16 as keras-hub writes them on JAX: a batched
    dot_general with an explicit algorithm (bf16 inputs, f32 accumulation)."""
    scores = jax.lax.dot_general(q, k, (((2,), (2,)), ((0,), (0,))),
                                 precision=jax.lax.DotAlgorithmPreset.BF16_BF16_F32)
    return jax.nn.softmax(scores.astype(jnp.float32), axis=-1).astype(q.dtype)


def linear_bias_bf16(x, w, b):
    """A dense layer in bf16: a matmul with its bias add fused and a bf16 result."""
    return x @ w + b


def vocab_softmax(logits):
    """A softmax over GPT-2's vocabulary (50257 words), computed in f32 from
    bf16 logits and rounded back: an LM head's last step."""
    return jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(logits.dtype)


def matmul_long_k(x, w):
    """A 16-bit matmul with a long sum (8192 terms): how precisely it is summed shows."""
    return x @ w


def _layer_norm(x, g, b):
    mean = jnp.mean(x, axis=-1, keepdims=True)
    var = jnp.mean(jnp.square(x - mean), axis=-1, keepdims=True)
    return (x - mean) * jax.lax.rsqrt(var + 1e-5) * g + b


def block(x, ln1_g, ln1_b, w_qkv, b_qkv, w_o, b_o, ln2_g, ln2_b, w_1, b_1, w_2, b_2):
    """A GPT-2 transformer block (pre-LN, fused QKV with bias, causal attention,
    GELU MLP, residuals), written for any float type: exported in bf16, and run
    in f32 for the reference that 16-bit validation compares both against."""
    heads = 4
    t, d = x.shape[-2], x.shape[-1]
    qkv = _layer_norm(x, ln1_g, ln1_b) @ w_qkv + b_qkv
    q, k, v = (a.reshape(x.shape[0], t, heads, d // heads) for a in jnp.split(qkv, 3, axis=-1))
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(jnp.asarray(d // heads, x.dtype))
    mask = jnp.tril(jnp.ones((t, t), bool))
    probs = jax.nn.softmax(jnp.where(mask, scores, jnp.finfo(x.dtype).min), axis=-1)
    attended = jnp.einsum("bhqk,bkhd->bqhd", probs, v).reshape(x.shape)
    x = x + attended @ w_o + b_o
    return x + jax.nn.gelu(_layer_norm(x, ln2_g, ln2_b) @ w_1 + b_1) @ w_2 + b_2


def _block_specs(dtype, batch=1, t=64, d=128):
    shapes = [(batch, t, d), (d,), (d,), (d, 3 * d), (3 * d,), (d, d), (d,), (d,), (d,), (d, 4 * d), (4 * d,),
              (4 * d, d), (d,)]
    return [jax.ShapeDtypeStruct(s, dtype) for s in shapes]


def _s(shape, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(shape, dtype)


MODELS = {
    "mlp": (mlp, [_s((8, 64)), _s((64, 128)), _s((128,)), _s((128, 16))]),
    "gemm_f32": (gemm_f32, [_s((512, 512)), _s((512, 512))]),
    "gemm_bf16": (gemm_bf16, [_s((512, 512), jnp.bfloat16), _s((512, 512), jnp.bfloat16)]),
    "layernorm_gelu": (layernorm_gelu, [_s((16, 256)), _s((256,)), _s((256,))]),
    "conv": (conv, [_s((2, 32, 32, 3)), _s((3, 3, 3, 16)), _s((3, 3, 16, 32))]),
    "attention": (attention, [_s((2, 64, 64)), _s((64, 64)), _s((64, 64)), _s((64, 64))]),
    "mixed_types": (mixed_types, [_s((16,), jnp.bool_), _s((16,), jnp.uint8), _s((4,), jnp.float16)]),
    "attention_scores_alg": (attention_scores_alg, [_s((2, 16, 32), jnp.bfloat16), _s((2, 16, 32), jnp.bfloat16)]),
    "linear_bias_bf16": (linear_bias_bf16, [_s((64, 128), jnp.bfloat16), _s((128, 256), jnp.bfloat16),
                                            _s((256,), jnp.bfloat16)]),
    "block_bf16": (block, _block_specs(jnp.bfloat16)),
    "vocab_softmax_bf16": (vocab_softmax, [_s((2, 4, 50257), jnp.bfloat16)]),
    "matmul_long_k_bf16": (matmul_long_k, [_s((16, 8192), jnp.bfloat16), _s((8192, 32), jnp.bfloat16)]),
}

# Models whose outputs are also computed in f32 (the inputs converted to f32),
# saved as NAME.f32.expected.npz: the reference of 16-bit validation.
F32_REFERENCES = {"block_bf16", "matmul_long_k_bf16"}


def _poly(spec, dtype=jnp.float32):
    return jax.ShapeDtypeStruct(jax.export.symbolic_shape(spec), dtype)


def _two_dims_specs():
    b, n = jax.export.symbolic_shape("b, n")  # one scope for both arguments
    return [_s((b, n)), _s((n, 8))]


# Shape-polymorphic exports: the symbolic dimensions are bound at run time.
# Each has the sizes the tests run it at, one {name: size} per case.
POLY_MODELS = {
    "classifier_poly": (classifier, [_poly("b, 64"), _s((64, 128)), _s((128,)), _s((128, 10)), _s((10,))],
                        [{"b": 1}, {"b": 5}, {"b": 64}, {"b": 8}, {"b": 32}]),
    "two_dims_poly": (two_dims, _two_dims_specs(),
                      [{"b": 1, "n": 3}, {"b": 5, "n": 7}, {"b": 64, "n": 16}, {"b": 4, "n": 16}]),
}


def poly_inputs(name, sizes, seed=0):
    """Seeded inputs of a polymorphic model with its symbolic dims set to `sizes`."""
    rng = np.random.default_rng(seed)
    out = []
    for spec in POLY_MODELS[name][1]:
        shape = tuple(sizes[str(d)] if not isinstance(d, int) else d for d in spec.shape)
        out.append((rng.standard_normal(shape).astype(np.float32) * 0.5).astype(spec.dtype))
    return out


# (mean, standard deviation) of each input where N(0, 0.5) would be
# unlike the model's real values: the block's weights as GPT-2 initializes
# them, its layer norms' gains near 1.
_W = (0.0, 0.02)
INPUT_STATS = {
    "block_bf16": [(0.0, 1.0), (1.0, 0.1), _W, _W, _W, _W, _W, (1.0, 0.1), _W, _W, _W, _W, _W],
}


def example_inputs(name, seed=0):
    """Seeded inputs for a model, as numpy arrays of the declared dtypes."""
    rng = np.random.default_rng(seed)
    out = []
    stats = INPUT_STATS.get(name)
    for i, spec in enumerate(MODELS[name][1]):
        dtype = np.dtype(spec.dtype)
        if stats:
            mean, std = stats[i]
            out.append((rng.standard_normal(spec.shape).astype(np.float32) * std + mean).astype(dtype))
        elif dtype == np.bool_:
            out.append(rng.integers(0, 2, spec.shape).astype(np.bool_))
        elif np.issubdtype(dtype, np.integer):
            out.append(rng.integers(0, 100, spec.shape).astype(dtype))
        else:
            out.append((rng.standard_normal(spec.shape).astype(np.float32) * 0.5).astype(dtype))
    return out


_BIG = np.random.default_rng(7).standard_normal((1024, 2048)).astype(np.float32)


def big_constant(x):
    """An 8 MB weight baked into the program as a dense constant."""
    return x @ _BIG


MODELS["big_constant"] = (big_constant, [_s((4, 1024))])


# The same programs at sizes that occupy a data-centre GPU, for latency
# comparisons with XLA (scripts/gpu/). Not used by the tests.
BENCH_MODELS = {
    "mlp": (mlp, [_s((256, 1024)), _s((1024, 4096)), _s((4096,)), _s((4096, 1024))]),
    "conv": (conv, [_s((32, 64, 64, 3)), _s((3, 3, 3, 64)), _s((3, 3, 64, 128))]),
    "attention": (attention, [_s((8, 512, 128)), _s((128, 128)), _s((128, 128)), _s((128, 128))]),
    "layernorm_gelu": (layernorm_gelu, [_s((4096, 1024)), _s((1024,)), _s((1024,))]),
    "gemm_f32": (gemm_f32, [_s((4096, 4096)), _s((4096, 4096))]),
    "gemm_bf16": (gemm_bf16, [_s((4096, 4096), jnp.bfloat16), _s((4096, 4096), jnp.bfloat16)]),
}
