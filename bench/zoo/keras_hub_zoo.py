"""keras-hub backbones in the zoo: keras-hub's own model definitions in small
configurations (the real widths, two layers or one block a stage), random
weights, bf16: GPT-2, Llama, Mistral and BERT on tokens, ViT and ResNet on
images.

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
    # ViT-B/16's widths, two layers, on 224 x 224 images.
    "vit": ("ViTBackbone", dict(image_shape=(224, 224, 3), patch_size=16, num_layers=2, num_heads=12,
                                hidden_dim=768, mlp_dim=3072)),
    # ResNet-50's stem and widths (bottleneck blocks, batch norm in inference
    # mode), one block a stage instead of 3, 4, 6, 3.
    "resnet": ("ResNetBackbone", dict(input_conv_filters=[64], input_conv_kernel_sizes=[7],
                                      stackwise_num_filters=[64, 128, 256, 512], stackwise_num_blocks=[1, 1, 1, 1],
                                      stackwise_num_strides=[1, 2, 2, 2], block_type="bottleneck_block",
                                      image_shape=(224, 224, 3))),
}
SMALL = dict(num_layers=1, hidden_dim=64, intermediate_dim=128, vocabulary_size=1000)
SMALL_IMAGE = {
    "vit": dict(image_shape=(32, 32, 3), patch_size=8, num_layers=1, num_heads=4, hidden_dim=64, mlp_dim=128),
    "resnet": dict(input_conv_filters=[16], input_conv_kernel_sizes=[3], stackwise_num_filters=[64, 64],
                   stackwise_num_blocks=[1, 1], stackwise_num_strides=[1, 2], image_shape=(32, 32, 3)),
}


def _init(path, shape):
    """How to fill one variable: norm scales around one, biases small,
    kernels and embeddings scaled so activations keep unit scale."""
    leaf = path.split("/")[-1]
    if len(shape) <= 1:
        # Batch norm's running variance divides: it stays around one too.
        return ("around_one", 0.1) if leaf in ("gamma", "scale", "moving_variance") else ("normal", 0.02)
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
    image = "image_shape" in cfg
    if size == "small":
        cfg.update(SMALL_IMAGE[model] if image else SMALL)
        for key, heads in (("num_query_heads", 4), ("num_key_value_heads", 2)) + ((("num_heads", 4),) if not image else ()):
            if key in cfg:
                cfg[key] = heads
        batch, seq = 1, 16
    backbone = getattr(keras_hub.models, cls)(**cfg, dtype="bfloat16")
    trainable = list(backbone.trainable_variables)
    frozen = list(backbone.non_trainable_variables)
    variables = trainable + frozen

    if image:
        # Pixels as a preprocessing layer leaves them: f32, about unit scale.
        inputs = [Arg("images", (batch,) + tuple(cfg["image_shape"]), jnp.float32, ("normal", 1.0))]
    else:
        inputs = [Arg("token_ids", (batch, seq), jnp.int32, ("int", 0, cfg["vocabulary_size"])),
                  Arg("padding_mask", (batch, seq), jnp.int32, ("int", 1, 2))]
        if model == "bert":
            inputs.append(Arg("segment_ids", (batch, seq), jnp.int32, ("int", 0, 2)))

    def fn(*values):
        feed = values[0] if image else {a.name: v for a, v in zip(inputs, values)}
        weights = values[len(inputs):]
        out, _ = backbone.stateless_call(list(weights[:len(trainable)]), list(weights[len(trainable):]), feed)
        return out

    args = list(inputs)
    for v in variables:
        args.append(Arg(v.path, tuple(v.shape), jnp.dtype(v.dtype), _init(v.path, tuple(v.shape))))
    return fn, args
