#!/usr/bin/env bash
# Makes .venv-zoo, the Python environment of the model zoo's exporter: the
# project's JAX release with the library whose model definitions the zoo
# exports (keras-hub, on Keras's JAX backend). It is separate from .venv, whose pins
# the rest of the project relies on.
#
# keras-hub declares tensorflow-text (and through it TensorFlow, about 600 MB)
# for its tokenizers; the zoo builds backbones with random weights and no
# tokenizer, so keras-hub is installed without its declared dependencies and
# with those its model code imports.
#
# usage: bench/zoo/setup.sh   (after scripts/setup.sh; idempotent)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=scripts/toolchain.env
. "$root/scripts/toolchain.env"
uv="$root/.venv/bootstrap/bin/uv"
venv="$root/.venv-zoo"
[ -x "$uv" ] || { echo "setup.sh: $uv is missing: run scripts/setup.sh first" >&2; exit 1; }
[ -x "$venv/bin/python" ] || "$uv" venv -q --python "$root/.venv/bin/python" "$venv"
"$uv" pip install -q --python "$venv/bin/python" \
  "jax==$JAX_VERSION" "jaxlib==$JAX_VERSION" "flatbuffers==$FLATBUFFERS_VERSION" \
  numpy==2.4.6 ml_dtypes==0.7.0 \
  keras==3.15.1
"$uv" pip install -q --python "$venv/bin/python" --no-deps keras-hub==0.32.0
"$uv" pip install -q --python "$venv/bin/python" \
  absl-py==2.5.1 regex==2026.12.2 packaging==26.4 rich==15.0.0 tokenizers==0.23.3 sentencepiece==0.2.3
KERAS_BACKEND=jax "$venv/bin/python" -c "import keras_hub, jax; print('zoo environment: jax', jax.__version__, 'keras-hub', keras_hub.__version__)"
