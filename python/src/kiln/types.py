"""Typed views of kiln's JSON: signatures, module metadata, validation reports, benchmark statistics.

Each class reads one of the documents the binary writes (docs/metadata.md,
docs/cli.md) and keeps the whole document in ``raw`` for fields it does not
name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

# kiln's element types (MLIR spelling) and their NumPy dtypes. The narrow
# floating-point types are ml_dtypes', which is how JAX represents them.
_NUMPY_NAMES = {
    "i1": "bool", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
    "ui8": "uint8", "ui16": "uint16", "ui32": "uint32", "ui64": "uint64",
    "f16": "float16", "f32": "float32", "f64": "float64",
    "complex<f32>": "complex64", "complex<f64>": "complex128",
}
_ML_DTYPES_NAMES = {
    "bf16": "bfloat16",
    "f8E4M3FN": "float8_e4m3fn", "f8E5M2": "float8_e5m2", "f8E4M3FNUZ": "float8_e4m3fnuz",
    "f8E5M2FNUZ": "float8_e5m2fnuz", "f8E4M3B11FNUZ": "float8_e4m3b11fnuz", "f8E4M3": "float8_e4m3",
    "f8E3M4": "float8_e3m4", "f8E8M0FNU": "float8_e8m0fnu",
}


def numpy_dtype(element: str) -> np.dtype | None:
    """The NumPy dtype of one of kiln's element types (``"f32"``, ``"bf16"``), or None when NumPy has none."""
    if element in _NUMPY_NAMES:
        return np.dtype(_NUMPY_NAMES[element])
    if element in _ML_DTYPES_NAMES:
        import ml_dtypes

        kind = getattr(ml_dtypes, _ML_DTYPES_NAMES[element], None)
        return np.dtype(kind) if kind is not None else None
    return None


@dataclass(frozen=True)
class TensorSpec:
    """One argument or result of a function: its name (when the exporter recorded one), shape and element type.

    Dynamic dimensions are None.
    """

    name: str | None
    shape: tuple[int | None, ...] | None
    element_type: str

    @property
    def dtype(self) -> np.dtype | None:
        """The NumPy dtype of the element type, or None for types NumPy cannot hold."""
        return numpy_dtype(self.element_type)

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> TensorSpec:
        shape = j.get("shape")
        return cls(name=j.get("name") or None,
                   shape=None if shape is None else tuple(None if d is None else int(d) for d in shape),
                   element_type=str(j.get("element_type", j.get("type", ""))))

    def __str__(self) -> str:
        dims = "*" if self.shape is None else ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name or '-'}: [{dims}] {self.element_type}"


@dataclass(frozen=True)
class Signature:
    """A public function of a module: its name, inputs and outputs."""

    function: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> Signature:
        return cls(function=str(j.get("name", "")),
                   inputs=tuple(TensorSpec.from_json(a) for a in j.get("arguments", [])),
                   outputs=tuple(TensorSpec.from_json(r) for r in j.get("results", [])))

    def __str__(self) -> str:
        ins = ", ".join(str(t) for t in self.inputs)
        outs = ", ".join(str(t) for t in self.outputs)
        return f"@{self.function}({ins}) -> ({outs})"


def public_signatures(functions: list[dict[str, Any]]) -> list[Signature]:
    """The public functions of a ``functions`` list as ``kiln inspect --json`` and the metadata write it."""
    return [Signature.from_json(f) for f in functions if f.get("visibility", "public") == "public"]


@dataclass(frozen=True)
class ModuleMetadata:
    """The record kiln writes next to every module (``NAME.TARGET.json``, docs/metadata.md)."""

    kiln_version: str
    iree_release: str
    iree_build: str
    created_at: str
    target: str
    backend: str
    runtime_device: str
    precision: str
    invocation: str
    input_sha256: str
    output_sha256: str
    size_bytes: int
    compile_seconds: float
    peak_rss_bytes: int
    compiler_command: tuple[str, ...]
    tuning: dict[str, Any] | None
    binding: dict[str, int] | None  # the sizes a static module was bound to (``bind``); None: as exported
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> ModuleMetadata:
        iree, target = j.get("iree", {}), j.get("target", {})
        inp, out, comp = j.get("input", {}), j.get("output", {}), j.get("compile", {})
        return cls(kiln_version=str(j.get("kiln_version", "")),
                   iree_release=str(iree.get("release", "")),
                   iree_build=str(iree.get("build", "")),
                   created_at=str(j.get("created_at", "")),
                   target=str(target.get("spec", "")),
                   backend=str(target.get("backend", "")),
                   runtime_device=str(target.get("runtime_device", "")),
                   precision=str(j.get("precision", "highest")),
                   invocation=str(j.get("invocation", "sync")),
                   input_sha256=str(inp.get("sha256", "")),
                   output_sha256=str(out.get("sha256", "")),
                   size_bytes=int(out.get("size_bytes", 0)),
                   compile_seconds=float(comp.get("wall_seconds", 0.0)),
                   peak_rss_bytes=int(comp.get("peak_rss_bytes", 0)),
                   compiler_command=tuple(j.get("compiler_command", [])),
                   tuning=j.get("tuning"),
                   binding=j.get("binding"),
                   raw=j)


@dataclass(frozen=True)
class OutputComparison:
    """How one output compared with its reference (one entry of ``kiln validate --json``)."""

    index: int
    name: str | None
    element_type: str
    shape: tuple[int, ...]
    passed: bool
    count: int
    mismatches: int
    max_abs_error: float
    max_rel_error: float
    atol: float
    rtol: float
    first_mismatch: dict[str, Any] | None
    problem: str | None

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> OutputComparison:
        return cls(index=int(j.get("index", 0)), name=j.get("name") or None,
                   element_type=str(j.get("element_type", "")), shape=tuple(j.get("shape", [])),
                   passed=bool(j.get("passed", False)), count=int(j.get("count", 0)),
                   mismatches=int(j.get("mismatches", 0)), max_abs_error=float(j.get("max_abs_error") or 0.0),
                   max_rel_error=float(j.get("max_rel_error") or 0.0), atol=float(j.get("atol") or 0.0),
                   rtol=float(j.get("rtol") or 0.0), first_mismatch=j.get("first_mismatch"), problem=j.get("problem"))


@dataclass(frozen=True)
class ValidationReport:
    """``kiln validate``'s report: whether every output matched, and how each compared."""

    passed: bool
    function: str
    device: str
    precision: str
    outputs: tuple[OutputComparison, ...]
    raw: dict[str, Any] = field(repr=False)

    def __bool__(self) -> bool:
        return self.passed

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> ValidationReport:
        return cls(passed=bool(j.get("passed", False)), function=str(j.get("function", "")),
                   device=str(j.get("device", "")), precision=str(j.get("precision", "highest")),
                   outputs=tuple(OutputComparison.from_json(o) for o in j.get("outputs", [])), raw=j)

    def __str__(self) -> str:
        lines = [f"{'PASS' if self.passed else 'MISMATCH'}: @{self.function} on {self.device}"]
        for o in self.outputs:
            label = f"output {o.index}" + (f" ({o.name})" if o.name else "")
            if o.problem:
                lines.append(f"  FAIL  {label}: {o.problem}")
            else:
                lines.append(f"  {'ok  ' if o.passed else 'FAIL'}  {label}: max abs err {o.max_abs_error:.3g}, "
                             f"max rel err {o.max_rel_error:.3g}; {o.mismatches} of {o.count} mismatch")
        return "\n".join(lines)


@dataclass(frozen=True)
class BenchStats:
    """``kiln bench``'s latency statistics of single calls, in milliseconds."""

    samples: int
    min_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    stddev_ms: float
    runs_per_second: float
    spread_warning: str | None
    device: str
    samples_ms: tuple[float, ...] = field(repr=False)
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> BenchStats:
        s = j.get("stats", {})
        return cls(samples=int(s.get("samples", 0)), min_ms=float(s.get("min_ms", 0)), p50_ms=float(s.get("p50_ms", 0)),
                   p90_ms=float(s.get("p90_ms", 0)), p99_ms=float(s.get("p99_ms", 0)), max_ms=float(s.get("max_ms", 0)),
                   mean_ms=float(s.get("mean_ms", 0)), stddev_ms=float(s.get("stddev_ms", 0)),
                   runs_per_second=float(s.get("runs_per_second", 0)), spread_warning=j.get("spread_warning"),
                   device=str(j.get("device", "")), samples_ms=tuple(j.get("samples_ms", [])), raw=j)


@dataclass(frozen=True)
class CacheStats:
    """``kiln cache stats``: the artifact cache's folder, size and counters (shared by every kiln process)."""

    path: str
    entries: int
    bytes: int
    max_bytes: int
    hits: int
    misses: int
    evictions: int
    corrupt_dropped: int

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> CacheStats:
        return cls(path=str(j.get("path", "")), entries=int(j.get("entries", 0)), bytes=int(j.get("bytes", 0)),
                   max_bytes=int(j.get("max_bytes", 0)), hits=int(j.get("hits", 0)), misses=int(j.get("misses", 0)),
                   evictions=int(j.get("evictions", 0)), corrupt_dropped=int(j.get("corrupt_dropped", 0)))


@dataclass(frozen=True)
class ModuleInfo:
    """``kiln inspect``: what a StableHLO file holds."""

    file: str
    module: str | None
    format: str
    dialects: tuple[str, ...]
    functions: tuple[Signature, ...]
    raw: dict[str, Any] = field(repr=False)

    @classmethod
    def from_json(cls, j: dict[str, Any]) -> ModuleInfo:
        return cls(file=str(j.get("file", "")), module=j.get("module"), format=str(j.get("format", "")),
                   dialects=tuple(j.get("dialects", [])), functions=tuple(public_signatures(j.get("functions", []))),
                   raw=j)
