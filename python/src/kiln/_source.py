"""Turning what a user hands to ``kiln.compile`` into a StableHLO file the binary reads.

JAX is imported only when a JAX function or export is given: StableHLO text,
bytes and files need nothing but the binary.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from .errors import InvalidArgumentError

# What MLIR text of a module starts with, after comments and attribute aliases.
_MLIR_TEXT = re.compile(r"^\s*(#loc|module\b|func\.func\b|#[A-Za-z_]|\"?builtin\.module)", re.MULTILINE)


def _is_exported(obj: Any) -> bool:
    return type(obj).__name__ == "Exported" and hasattr(obj, "mlir_module") and hasattr(obj, "in_avals")


def _function_name(fn: Any) -> str:
    inner = getattr(fn, "__wrapped__", fn)
    name = getattr(inner, "__name__", None) or getattr(fn, "__name__", None) or "model"
    return name if name != "<lambda>" else "model"


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._")
    return cleaned or "model"


def _export(fn: Any, arg_specs: tuple[Any, ...]) -> Any:
    try:
        import jax
        from jax import export
    except ImportError as e:
        raise InvalidArgumentError("compiling a Python function needs JAX (pip install jax); or pass StableHLO "
                                   "text, bytes or a file") from e
    if not arg_specs:
        raise InvalidArgumentError("give the arguments' shapes and dtypes after the function, e.g. "
                                   "kiln.compile(fn, jax.ShapeDtypeStruct((8, 64), jnp.float32))")
    specs = []
    for i, spec in enumerate(arg_specs):
        if hasattr(spec, "shape") and hasattr(spec, "dtype"):
            specs.append(spec if isinstance(spec, jax.ShapeDtypeStruct) else jax.ShapeDtypeStruct(spec.shape, spec.dtype))
        else:
            raise InvalidArgumentError(f"argument spec {i} is a {type(spec).__name__}: give a jax.ShapeDtypeStruct "
                                       "(or an array) for every argument")
    jitted = fn if hasattr(fn, "lower") else jax.jit(fn)
    try:
        return export.export(jitted)(*specs)
    except (TypeError, ValueError) as e:
        raise InvalidArgumentError(f"JAX could not export {_function_name(fn)} for these argument specs: {e}") from e


def write_stablehlo(source: Any, arg_specs: tuple[Any, ...], out_dir: Path, name: str | None) -> Path:
    """Writes ``source`` as a StableHLO file in ``out_dir`` (or returns its path when it is a file) for the binary."""
    looks_like_text = (isinstance(source, str) and bool(_MLIR_TEXT.search(source[:4096]))
                       and ("\n" in source or not os.path.exists(source)))
    if isinstance(source, os.PathLike) or (isinstance(source, str) and not looks_like_text):
        path = Path(source)
        if arg_specs:
            raise InvalidArgumentError("argument specs go with a JAX function; a StableHLO file carries its signature")
        if not path.is_file():
            raise InvalidArgumentError(f"{source} is neither a StableHLO file nor MLIR text")
        return path
    if arg_specs and (isinstance(source, (str, bytes, bytearray)) or _is_exported(source)):
        raise InvalidArgumentError("argument specs go with a JAX function; an export or StableHLO text carries its "
                                   "signature")
    if isinstance(source, str):
        text, suffix, default = source.encode(), ".mlir", "model"
    elif isinstance(source, (bytes, bytearray)):
        text, suffix, default = bytes(source), ".mlirbc", "model"
    elif _is_exported(source):
        text, suffix, default = source.mlir_module().encode(), ".mlir", getattr(source, "fun_name", "model")
    elif callable(source):
        exported = _export(source, arg_specs)
        text, suffix, default = exported.mlir_module().encode(), ".mlir", _function_name(source)
    else:
        raise InvalidArgumentError(f"cannot compile a {type(source).__name__}: give a JAX function with argument specs, "
                                   "a jax.export.Exported, StableHLO text or bytes, or a path")
    path = out_dir / (_safe_name(name or default) + suffix)
    path.write_bytes(text)
    return path
