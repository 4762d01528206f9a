"""keras-hub backbones in the zoo: keras-hub's own model definitions in small
configurations (the real widths, two layers), random weights, bf16.

The weights are the function's arguments: Keras 3 calls a model statelessly
with its variables' values (`stateless_call`), so the exported program has no
constants. Needs the zoo's environment (bench/zoo/setup.sh) with the JAX
backend; build() sets KERAS_BACKEND before keras is first imported.
"""
import math
import os

os.environ.setdefault("KERAS_BACKEND", "jax")

BATCH, SEQ = 2, 128

CONFIGS = {
    "gpt2": ("GPT2Backbone", dict(vocabulary_size=50257, num_layers=2, num_heads=12, hidden_dim=768,
                                  intermediate_dim=3072, max_sequence_length=1024)),
    "llama": ("LlamaBackbone", dict(vocabulary_size=32000, num_layers=2, num_query_heads=32, num_key_value_heads=8,
                                    hidden_dim=2048, intermediate_dim=8192)),
    "mistral": ("MistralBackbone", dict(vocabulary_size=32000, num_layers=2, num_query_heads=32,
                                        num_key_value_heads=8, hidden_dim=2048, intermediate_dim=5632,
                                        sliding_window=4096)),
    "bert": ("BertBackbone", dict(vocabulary_size=30522, num_layers=2, num_heads=12, hidden_dim=768,
                                  intermediate_dim=3072, max_sequence_length=512)),
}
SMALL = dict(num_layers=1, hidden_dim=64, intermediate_dim=128, vocabulary_size=1000)


def _init(path, shape):
    """How to fill one variable: norm scales around one, biases small,
    kernels and embeddings scaled so activations keep unit scale."""
    leaf = path.split("/")[-1]
    if len(shape) <= 1:
        return ("around_one", 0.1) if leaf in ("gamma", "scale") else ("normal", 0.02)
    if "embedding" in path:
        return ("normal", 1.0)
    return ("normal", 1.0 / math.sqrt(math.prod(shape[:-1]) if "output" in path or "attention_output" in path
                                      else shape[0]))


def build(model, size):
    import jax.numpy as jnp
    import keras_hub

    from layers import Arg

    cls, cfg = CONFIGS[model]
    cfg = dict(cfg)
    batch, seq = BATCH, SEQ
    if size == "small":
        cfg.update({k: v for k, v in SMALL.items()})
        for key, heads in (("num_heads", 4), ("num_query_heads", 4), ("num_key_value_heads", 2)):
            if key in cfg:
                cfg[key] = heads
        batch, seq = 1, 16
    backbone = getattr(keras_hub.models, cls)(**cfg, dtype="bfloat16")
    trainable = list(backbone.trainable_variables)
    frozen = list(backbone.non_trainable_variables)
    variables = trainable + frozen

    inputs = [Arg("token_ids", (batch, seq), jnp.int32, ("int", 0, cfg["vocabulary_size"])),
              Arg("padding_mask", (batch, seq), jnp.int32, ("int", 1, 2))]
    if model == "bert":
        inputs.append(Arg("segment_ids", (batch, seq), jnp.int32, ("int", 0, 2)))

    def fn(*values):
        feed = {a.name: v for a, v in zip(inputs, values)}
        weights = values[len(inputs):]
        out, _ = backbone.stateless_call(list(weights[:len(trainable)]), list(weights[len(trainable):]), feed)
        return out

    args = list(inputs)
    for v in variables:
        args.append(Arg(v.path, tuple(v.shape), jnp.dtype(v.dtype), _init(v.path, tuple(v.shape))))
    return fn, args
