"""kiln from Python: compile JAX functions and StableHLO into IREE modules, run, validate and benchmark them.

Every operation runs the ``kiln`` binary that comes with this package (or
``$KILN_BINARY``) and reads its JSON output; the binary uses the IREE compiler
and runtime of this Python environment (``KILN_IREE_DIR``, unless set).

    import jax, jax.numpy as jnp, kiln
    cpu, h100 = kiln.compile(mlp, jax.ShapeDtypeStruct((8, 64), jnp.float32), targets=["cpu", "cuda:h100"])
    y = cpu.run(x)
    print(cpu.validate([x], mlp(x)))
"""

from __future__ import annotations

from typing import Any

from ._binary import binary
from ._compile import Module, cache_stats, compile, inspect
from .client import Client, Job
from .errors import (CancelledError, CompileFailedError, DeadlineExceededError, FailedPreconditionError, InternalError,
                     InvalidArgumentError, KilnError, NotFoundError, ResourceExhaustedError, UnauthenticatedError,
                     UnavailableError)
from .types import (BenchStats, CacheStats, ModuleInfo, ModuleMetadata, OutputComparison, Signature, TensorSpec,
                    ValidationReport)

__all__ = [
    "compile", "inspect", "cache_stats", "binary", "Module", "Client", "Job",
    "Signature", "TensorSpec", "ModuleMetadata", "ModuleInfo", "ValidationReport", "OutputComparison", "BenchStats",
    "CacheStats", "KilnError", "InvalidArgumentError", "NotFoundError", "FailedPreconditionError",
    "CompileFailedError", "DeadlineExceededError", "ResourceExhaustedError", "UnavailableError", "CancelledError",
    "UnauthenticatedError", "InternalError", "__version__",
]


def _binary_version() -> str:
    import json

    from ._binary import run_text

    return str(json.loads(run_text(["version", "--json"]))["version"])


def __getattr__(name: str) -> Any:
    # The version is the binary's: written into the wheel when it was built,
    # asked of the binary when the package runs from the source tree.
    if name == "__version__":
        try:
            from ._version import __version__ as version
        except ImportError:
            version = _binary_version()
        globals()["__version__"] = version
        return version
    raise AttributeError(f"module 'kiln' has no attribute {name!r}")
