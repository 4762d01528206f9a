"""Layers of the model zoo written in plain JAX (numpy-style, no library).

Each builder takes a size configuration and an element type and returns the
function and the description of its arguments: weights are arguments, so an
exported program carries no constants, and the inputs are generated from the
description (see zoo.py, Arg). Norms, softmax and routing compute in f32 and
cast back, as mixed-precision deployments do; matrix products take the
layer's element type.
"""
import math

import jax
import jax.numpy as jnp

F32 = jnp.float32


class Arg:
    """One argument: its name, shape, element type and how to fill it.

    init is ("normal", std), ("around_one", std) for norm scales, or
    ("int", low, high) for token ids and positions (high exclusive).
    """

    def __init__(self, name, shape, dtype, init):
        self.name, self.shape, self.dtype, self.init = name, tuple(shape), dtype, init

    def spec(self):
        return jax.ShapeDtypeStruct(self.shape, self.dtype)

    def to_json(self):
        return {"name": self.name, "shape": list(self.shape), "dtype": jnp.dtype(self.dtype).name,
                "init": list(self.init)}


def W(name, shape, dtype, fan_in=None):
    """A weight scaled by 1/sqrt(fan_in), so activations keep unit scale."""
    fan_in = fan_in or shape[0]
    return Arg(name, shape, dtype, ("normal", 1.0 / math.sqrt(fan_in)))


def B(name, shape, dtype):
    return Arg(name, shape, dtype, ("normal", 0.02))


def G(name, shape, dtype):
    return Arg(name, shape, dtype, ("around_one", 0.1))


def X(name, shape, dtype):
    return Arg(name, shape, dtype, ("normal", 1.0))


# ---- building blocks ------------------------------------------------------

def layer_norm(x, g, b, eps=1e-5):
    h = x.astype(F32)
    mean = h.mean(-1, keepdims=True)
    var = jnp.square(h - mean).mean(-1, keepdims=True)
    return ((h - mean) * jax.lax.rsqrt(var + eps) * g.astype(F32) + b.astype(F32)).astype(x.dtype)


def rms_norm(x, g, eps=1e-5):
    h = x.astype(F32)
    return (h * jax.lax.rsqrt(jnp.square(h).mean(-1, keepdims=True) + eps) * g.astype(F32)).astype(x.dtype)


def group_norm(x, g, b, groups, eps=1e-5):
    """GroupNorm over NHWC: statistics per sample and group of channels."""
    n, h, w, c = x.shape
    y = x.astype(F32).reshape(n, h, w, groups, c // groups)
    mean = y.mean((1, 2, 4), keepdims=True)
    var = jnp.square(y - mean).mean((1, 2, 4), keepdims=True)
    y = ((y - mean) * jax.lax.rsqrt(var + eps)).reshape(n, h, w, c)
    return (y * g.astype(F32) + b.astype(F32)).astype(x.dtype)


def softmax_f32(scores, dtype):
    return jax.nn.softmax(scores.astype(F32), axis=-1).astype(dtype)


def attention(q, k, v, causal, offset=0):
    """q (B, T, H, hd), k/v (B, S, KV, hd) with H a multiple of KV (grouped
    queries). causal: query i sees keys up to offset + i."""
    b, t, h, hd = q.shape
    s, kv = k.shape[1], k.shape[2]
    q = q.reshape(b, t, kv, h // kv, hd)
    scores = jnp.einsum("btgrd,bsgd->bgrts", q, k) * (1.0 / math.sqrt(hd))
    if causal:
        allowed = jnp.arange(s)[None, :] <= (jnp.arange(t)[:, None] + offset)
        scores = jnp.where(allowed, scores, jnp.finfo(scores.dtype).min)
    p = softmax_f32(scores, v.dtype)
    return jnp.einsum("bgrts,bsgd->btgrd", p, v).reshape(b, t, h * hd)


def rope(x, positions, theta=10000.0):
    """Rotary embedding, halves rotated (Llama's layout): x (B, T, H, hd),
    positions (T,) or (B, T)."""
    hd = x.shape[-1]
    freq = 1.0 / (theta ** (jnp.arange(0, hd, 2, dtype=F32) / hd))
    angle = positions.astype(F32)[..., None] * freq
    angle = angle[None] if angle.ndim == 2 else angle
    cos, sin = jnp.cos(angle)[:, :, None, :], jnp.sin(angle)[:, :, None, :]
    x1, x2 = jnp.split(x.astype(F32), 2, axis=-1)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).astype(x.dtype)


def conv(x, k, stride=1):
    return jax.lax.conv_general_dilated(x, k, (stride, stride), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))


# ---- GPT-2 decoder block: pre-LayerNorm, causal attention, GELU, biases ----

def gpt2_block(c, dt):
    bsz, t, d, h, f = c["batch"], c["seq"], c["dim"], c["heads"], 4 * c["dim"]

    def fn(x, ln1_g, ln1_b, w_qkv, b_qkv, w_o, b_o, ln2_g, ln2_b, w_fc, b_fc, w_proj, b_proj):
        qkv = layer_norm(x, ln1_g, ln1_b) @ w_qkv + b_qkv
        q, k, v = (a.reshape(bsz, t, h, d // h) for a in jnp.split(qkv, 3, axis=-1))
        x = x + attention(q, k, v, causal=True) @ w_o + b_o
        y = jax.nn.gelu(layer_norm(x, ln2_g, ln2_b) @ w_fc + b_fc, approximate=True)
        return x + y @ w_proj + b_proj

    args = [X("x", (bsz, t, d), dt), G("ln1_g", (d,), dt), B("ln1_b", (d,), dt),
            W("w_qkv", (d, 3 * d), dt), B("b_qkv", (3 * d,), dt), W("w_o", (d, d), dt), B("b_o", (d,), dt),
            G("ln2_g", (d,), dt), B("ln2_b", (d,), dt), W("w_fc", (d, f), dt), B("b_fc", (f,), dt),
            W("w_proj", (f, d), dt), B("b_proj", (d,), dt)]
    return fn, args


# ---- encoder block (BERT: post-LN; ViT: pre-LN), bidirectional attention ----

def encoder_block(c, dt, pre_norm):
    bsz, t, d, h, f = c["batch"], c["seq"], c["dim"], c["heads"], 4 * c["dim"]

    def fn(x, w_qkv, b_qkv, w_o, b_o, ln1_g, ln1_b, w_fc, b_fc, w_proj, b_proj, ln2_g, ln2_b):
        def attend(y):
            qkv = y @ w_qkv + b_qkv
            q, k, v = (a.reshape(bsz, t, h, d // h) for a in jnp.split(qkv, 3, axis=-1))
            return attention(q, k, v, causal=False) @ w_o + b_o

        def mlp(y):
            return jax.nn.gelu(y @ w_fc + b_fc, approximate=False) @ w_proj + b_proj

        if pre_norm:
            x = x + attend(layer_norm(x, ln1_g, ln1_b, 1e-6))
            return x + mlp(layer_norm(x, ln2_g, ln2_b, 1e-6))
        x = layer_norm(x + attend(x), ln1_g, ln1_b, 1e-12)
        return layer_norm(x + mlp(x), ln2_g, ln2_b, 1e-12)

    args = [X("x", (bsz, t, d), dt), W("w_qkv", (d, 3 * d), dt), B("b_qkv", (3 * d,), dt),
            W("w_o", (d, d), dt), B("b_o", (d,), dt), G("ln1_g", (d,), dt), B("ln1_b", (d,), dt),
            W("w_fc", (d, f), dt), B("b_fc", (f,), dt), W("w_proj", (f, d), dt), B("b_proj", (d,), dt),
            G("ln2_g", (d,), dt), B("ln2_b", (d,), dt)]
    return fn, args


# ---- Llama decoder block: RMSNorm, RoPE, grouped-query attention, SwiGLU ----

def _llama_weights(c, dt):
    d, h, kv, hd, f = c["dim"], c["heads"], c["kv_heads"], c["dim"] // c["heads"], c["ffn"]
    return [G("attn_norm", (d,), dt), W("wq", (d, h * hd), dt), W("wk", (d, kv * hd), dt),
            W("wv", (d, kv * hd), dt), W("wo", (h * hd, d), dt), G("ffn_norm", (d,), dt),
            W("w_gate", (d, f), dt), W("w_up", (d, f), dt), W("w_down", (f, d), dt)]


def _swiglu(x, ffn_norm, w_gate, w_up, w_down):
    y = rms_norm(x, ffn_norm)
    return x + (jax.nn.silu(y @ w_gate) * (y @ w_up)) @ w_down


def llama_block(c, dt):
    bsz, t, d, h, kv = c["batch"], c["seq"], c["dim"], c["heads"], c["kv_heads"]
    hd = d // h

    def fn(x, attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down):
        y = rms_norm(x, attn_norm)
        pos = jnp.arange(t)
        q = rope((y @ wq).reshape(bsz, t, h, hd), pos)
        k = rope((y @ wk).reshape(bsz, t, kv, hd), pos)
        v = (y @ wv).reshape(bsz, t, kv, hd)
        x = x + attention(q, k, v, causal=True) @ wo
        return _swiglu(x, ffn_norm, w_gate, w_up, w_down)

    return fn, [X("x", (bsz, t, d), dt)] + _llama_weights(c, dt)


def llama_decode(c, dt, m):
    """One decode step of m sequences, one new token each, against a KV cache
    of `cache` positions; every sequence is at position `pos`. Returns the
    hidden states and both updated caches."""
    d, h, kv, s = c["dim"], c["heads"], c["kv_heads"], c["cache"]
    hd = d // h

    def fn(x, k_cache, v_cache, pos, attn_norm, wq, wk, wv, wo, ffn_norm, w_gate, w_up, w_down):
        y = rms_norm(x, attn_norm)
        positions = jnp.full((m, 1), pos)
        q = rope((y @ wq).reshape(m, 1, h, hd), positions)
        k = rope((y @ wk).reshape(m, 1, kv, hd), positions)
        v = (y @ wv).reshape(m, 1, kv, hd)
        zero = jnp.zeros((), pos.dtype)
        k_cache = jax.lax.dynamic_update_slice(k_cache, k, (zero, pos, zero, zero))
        v_cache = jax.lax.dynamic_update_slice(v_cache, v, (zero, pos, zero, zero))
        x = x + attention(q, k_cache, v_cache, causal=True, offset=pos) @ wo
        return _swiglu(x, ffn_norm, w_gate, w_up, w_down), k_cache, v_cache

    args = [X("x", (m, 1, d), dt), X("k_cache", (m, s, kv, hd), dt), X("v_cache", (m, s, kv, hd), dt),
            Arg("pos", (), jnp.int32, ("int", s // 2, s))] + _llama_weights(c, dt)
    return fn, args


# ---- ResNet-50 bottleneck (inference: batch norm folded to scale and bias) ----

def resnet_bottleneck(c, dt):
    n, hw, cin, mid = c["batch"], c["hw"], c["channels"], c["channels"] // 4

    def fn(x, k1, s1, b1, k2, s2, b2, k3, s3, b3):
        y = jax.nn.relu(conv(x, k1) * s1 + b1)
        y = jax.nn.relu(conv(y, k2) * s2 + b2)
        return jax.nn.relu(x + conv(y, k3) * s3 + b3)

    args = [X("x", (n, hw, hw, cin), dt), W("k1", (1, 1, cin, mid), dt, cin), G("s1", (mid,), dt), B("b1", (mid,), dt),
            W("k2", (3, 3, mid, mid), dt, 9 * mid), G("s2", (mid,), dt), B("b2", (mid,), dt),
            W("k3", (1, 1, mid, cin), dt, mid), G("s3", (cin,), dt), B("b3", (cin,), dt)]
    return fn, args


# ---- UNet residual block (diffusion style): GroupNorm, SiLU, time embedding ----

def unet_block(c, dt):
    n, hw, ch, temb, groups = c["batch"], c["hw"], c["channels"], c["temb"], c["groups"]

    def fn(x, t, gn1_g, gn1_b, k1, kb1, wt, bt, gn2_g, gn2_b, k2, kb2):
        y = conv(jax.nn.silu(group_norm(x, gn1_g, gn1_b, groups)), k1) + kb1
        y = y + (jax.nn.silu(t) @ wt + bt)[:, None, None, :]
        y = conv(jax.nn.silu(group_norm(y, gn2_g, gn2_b, groups)), k2) + kb2
        return x + y

    args = [X("x", (n, hw, hw, ch), dt), X("t", (n, temb), dt), G("gn1_g", (ch,), dt), B("gn1_b", (ch,), dt),
            W("k1", (3, 3, ch, ch), dt, 9 * ch), B("kb1", (ch,), dt), W("wt", (temb, ch), dt), B("bt", (ch,), dt),
            G("gn2_g", (ch,), dt), B("gn2_b", (ch,), dt), W("k2", (3, 3, ch, ch), dt, 9 * ch), B("kb2", (ch,), dt)]
    return fn, args


# ---- token embedding and tied softmax head (GPT-2's ends) ----

def embed_head(c, dt):
    bsz, t, vocab, d = c["batch"], c["seq"], c["vocab"], c["dim"]

    def fn(ids, wte, wpe, lnf_g, lnf_b):
        x = wte[ids] + wpe[None, :t]
        logits = layer_norm(x, lnf_g, lnf_b) @ wte.T
        return softmax_f32(logits, dt)

    args = [Arg("ids", (bsz, t), jnp.int32, ("int", 0, vocab)), Arg("wte", (vocab, d), dt, ("normal", 0.02 * 16)),
            X("wpe", (t, d), dt), G("lnf_g", (d,), dt), B("lnf_b", (d,), dt)]
    return fn, args


# ---- mixture of experts: top-k routing with capacity (GShard/Switch style) ----

def moe_topk(c, dt):
    t, d, e, f, k = c["tokens"], c["dim"], c["experts"], c["ffn"], c["top_k"]
    capacity = int(math.ceil(1.25 * t * k / e))

    def fn(x, w_router, w_gate, w_up, w_down):
        probs = jax.nn.softmax((x @ w_router).astype(F32), axis=-1)
        gates, experts = jax.lax.top_k(probs, k)
        gates = gates / gates.sum(-1, keepdims=True)
        # Slot of each (token, choice) in its expert's buffer: choices are
        # queued in order (first choices first), tokens beyond capacity dropped.
        onehot = jax.nn.one_hot(experts, e, dtype=jnp.int32)               # (t, k, e)
        order = onehot.transpose(1, 0, 2).reshape(k * t, e)
        slot = (jnp.cumsum(order, axis=0) - 1).reshape(k, t, e).transpose(1, 0, 2)
        slot = (slot * onehot).sum(-1)                                        # (t, k)
        keep = slot < capacity
        dispatch = (jax.nn.one_hot(experts, e, dtype=F32)[..., None]
                    * jax.nn.one_hot(jnp.where(keep, slot, capacity), capacity, dtype=F32)[:, :, None, :])
        combine = (dispatch * gates[..., None, None]).sum(1).astype(dt)      # (t, e, cap)
        dispatch = dispatch.sum(1).astype(dt)
        xe = jnp.einsum("tec,td->ecd", dispatch, x)
        h = jax.nn.silu(jnp.einsum("ecd,edf->ecf", xe, w_gate)) * jnp.einsum("ecd,edf->ecf", xe, w_up)
        ye = jnp.einsum("ecf,efd->ecd", h, w_down)
        return jnp.einsum("tec,ecd->td", combine, ye)

    args = [X("x", (t, d), dt), W("w_router", (d, e), dt), W("w_gate", (e, d, f), dt, d),
            W("w_up", (e, d, f), dt, d), W("w_down", (e, f, d), dt, f)]
    return fn, args
