"""``kiln.compile``, ``Module`` and the other local operations: each is one run of the binary."""

from __future__ import annotations

import difflib
import json
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Union

import numpy as np

from . import _binary
from ._source import write_stablehlo
from .errors import InvalidArgumentError, KilnError, error_for
from .types import (BenchStats, CacheStats, ModuleInfo, ModuleMetadata, Signature, ValidationReport, numpy_dtype,
                    public_signatures)

ArrayLike = Any
Outputs = Union[np.ndarray, tuple[np.ndarray, ...]]

def bindings(value: Any) -> list[dict[str, int]]:
    """``bind``: one ``{"b": 8}`` or a list of them, each a static module; checked here, sizes by the binary."""
    entries = [value] if isinstance(value, dict) else list(value)
    if not entries:
        raise InvalidArgumentError("bind is empty: give {'b': 8} or a list of such bindings")
    for entry in entries:
        if not isinstance(entry, dict) or not entry:
            raise InvalidArgumentError(f"bind takes {{name: size}} dicts, e.g. {{'b': 8}}; got {entry!r}")
        for k, v in entry.items():
            if not isinstance(k, str) or isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise InvalidArgumentError(f"bind: {k!r}: {v!r} is not a name and an integer size")
    return [{k: int(v) for k, v in entry.items()} for entry in entries]


def _bind_flags(value: Any) -> list[str]:
    flags: list[str] = []
    for entry in bindings(value):
        flags += ["--bind", ",".join(f"{k}={v}" for k, v in entry.items())]
    return flags


# Keyword options of kiln.compile and the `kiln compile` flags they become.
_COMPILE_OPTIONS: dict[str, Callable[[Any], list[str]]] = {
    "opt_level": lambda v: ["--opt-level", str(v)],
    "data_tiling": lambda v: ["--data-tiling" if v else "--no-data-tiling"],
    "flags": lambda v: [f"--flag={f}" for f in ([v] if isinstance(v, str) else v)],
    "timeout": lambda v: ["--timeout", str(v)],
    "jobs": lambda v: ["--jobs", str(v)],
    "cache": lambda v: [] if v else ["--no-cache"],
    "explain_cache": lambda v: ["--explain-cache"] if v else [],
    "invocation": lambda v: ["--invocation", str(v)],
    "tuning": lambda v: [] if v else ["--no-tuning"],
    "keep_f64": lambda v: ["--keep-f64"] if v else [],
    "executor": lambda v: ["--executor", str(v)],
    "bind": _bind_flags,
}


def _option_flags(options: dict[str, Any]) -> list[str]:
    flags: list[str] = []
    for key, value in options.items():
        if key not in _COMPILE_OPTIONS:
            near = difflib.get_close_matches(key, list(_COMPILE_OPTIONS), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(sorted(_COMPILE_OPTIONS))})"
            raise InvalidArgumentError(f"unknown compile option {key!r}{hint}")
        if value is not None:
            flags += _COMPILE_OPTIONS[key](value)
    return flags


def _save_arrays(arrays: Iterable[ArrayLike], folder: Path, prefix: str) -> list[str]:
    paths = []
    for i, a in enumerate(arrays):
        array = np.ascontiguousarray(np.asarray(a))
        if array.dtype == object:
            raise InvalidArgumentError(f"{prefix} {i} is not a numeric array (dtype object)")
        path = folder / f"{prefix}{i}.npy"
        np.save(path, array, allow_pickle=False)
        paths.append(str(path))
    return paths


def _as_list(values: ArrayLike | Sequence[ArrayLike]) -> list[ArrayLike]:
    if isinstance(values, (list, tuple)):
        return list(values)
    return [values]


class Module:
    """A compiled IREE module (``NAME.TARGET.vmfb``) with kiln's record of how it was made.

    Attributes:
        path: the ``.vmfb`` file.
        target: the target it was compiled for, as given (``"cpu"``, ``"cuda:h100"``).
        metadata: the record kiln wrote next to it (``NAME.TARGET.json``).
        metadata_path: that record's file.
        signature: the module's public function (the first, when it has several).
        signatures: every public function.
        cache_hit: whether kiln took it from the artifact cache instead of compiling.
    """

    def __init__(self, path: str | Path, metadata: dict[str, Any], metadata_path: str | Path | None = None,
                 cache_hit: bool = False) -> None:
        self.path = Path(path)
        self.metadata_path = Path(metadata_path) if metadata_path else self.path.with_suffix(".json")
        self.metadata = ModuleMetadata.from_json(metadata)
        self.target = self.metadata.target
        self.signatures = public_signatures(metadata.get("functions", []))
        self.signature: Signature | None = self.signatures[0] if self.signatures else None
        self.cache_hit = cache_hit

    @classmethod
    def load(cls, path: str | Path) -> Module:
        """A module kiln compiled earlier, read with the metadata file next to it."""
        path = Path(path)
        meta = path.with_suffix(".json")
        if not meta.is_file():
            raise error_for("not_found", f"{path} has no kiln metadata next to it ({meta.name})")
        return cls(path, json.loads(meta.read_text()), meta)

    def __repr__(self) -> str:
        return f"Module({str(self.path)!r}, target={self.target!r}, signature={str(self.signature)!r})"

    def _signature_of(self, function: str | None) -> Signature | None:
        for s in self.signatures:
            if function is None or s.function == function:
                return s
        return None

    def _module_args(self, device: str | None, function: str | None) -> list[str]:
        args = [str(self.path)]
        if device:
            args += ["--device", device]
        if function:
            args += ["--function", function]
        return args

    def run(self, *inputs: ArrayLike, device: str | None = None, function: str | None = None,
            seed: int | None = None) -> Outputs:
        """Runs the module once (``kiln run``) and returns its outputs as NumPy arrays.

        Args:
            *inputs: one array per argument (NumPy, JAX or anything ``np.asarray`` takes; bf16 and f8 as
                ml_dtypes arrays). With none, kiln generates seeded inputs from the signature.
            device: ``"cpu"``, ``"cuda"``, ``"vulkan"``, ``"hip"`` or an IREE device URI; default: the
                device of the module's target.
            function: the function to call; default: the module's one public function.
            seed: the seed of generated inputs (only without ``inputs``).

        Returns:
            The one output as an array, or a tuple of arrays for several outputs, typed by the module's
            signature (bf16 and f8 outputs as ml_dtypes arrays).

        Raises:
            InvalidArgumentError: wrong number of inputs, a wrong shape or element type.
            KilnError: any other failure, with kiln's code and message.
        """
        with tempfile.TemporaryDirectory(prefix="kiln-run-") as tmp:
            folder = Path(tmp)
            args = ["run", *self._module_args(device, function), "-o", str(folder / "out")]
            for p in _save_arrays(inputs, folder, "input"):
                args += ["--input", p]
            if seed is not None:
                if inputs:
                    raise InvalidArgumentError("seed= generates inputs: give it without input arrays")
                args += ["--seed", str(seed)]
            _, record = _binary.run_json(args)
            signature = self._signature_of(record.get("function"))
            outputs = []
            for i, out in enumerate(record.get("outputs", [])):
                array = np.load(out["file"], allow_pickle=False)
                want = numpy_dtype(signature.outputs[i].element_type) if signature and i < len(signature.outputs) else None
                if want is not None and array.dtype != want and array.dtype.itemsize == want.itemsize:
                    array = array.view(want)  # bf16 and f8 travel as raw bytes
                outputs.append(array)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def validate(self, inputs: ArrayLike | Sequence[ArrayLike], expected: ArrayLike | Sequence[ArrayLike],
                 atol: float | None = None, rtol: float | None = None, device: str | None = None,
                 function: str | None = None, nan: str = "equal") -> ValidationReport:
        """Runs the module on ``inputs`` and compares its outputs with ``expected`` (``kiln validate``).

        Floating-point outputs pass when ``|got - want| <= atol + rtol * |want|`` everywhere; the
        default tolerances depend on the element type and the module's precision (docs/cli.md).
        A mismatch is not an exception: the report says ``passed=False`` (and is falsy).

        Args:
            inputs: an array, or a sequence of arrays in argument order.
            expected: the reference outputs (e.g. JAX's on the same inputs): an array or a sequence.
            atol, rtol: tolerances overriding kiln's defaults.
            device, function: as for :meth:`run`.
            nan: ``"equal"`` (NaN must be where the reference has NaN) or ``"fail"``.
        """
        with tempfile.TemporaryDirectory(prefix="kiln-validate-") as tmp:
            folder = Path(tmp)
            args = ["validate", *self._module_args(device, function), "--nan", nan]
            for p in _save_arrays(_as_list(inputs), folder, "input"):
                args += ["--input", p]
            for p in _save_arrays(_as_list(expected), folder, "expected"):
                args += ["--expected", p]
            if atol is not None:
                args += ["--atol", repr(float(atol))]
            if rtol is not None:
                args += ["--rtol", repr(float(rtol))]
            _, report = _binary.run_json(args, ok_statuses=(0, 1))
        return ValidationReport.from_json(report)

    def bench(self, *inputs: ArrayLike, repetitions: int = 100, warmup: int = 5, batch: int | None = None,
              device: str | None = None, function: str | None = None) -> BenchStats:
        """Measures single-call latency with the runtime's benchmark tool (``kiln bench``).

        Args:
            *inputs: arrays as for :meth:`run`; with none, seeded inputs.
            repetitions: measured calls; warmup: calls discarded first.
            batch: items per call, for items per second.
        """
        with tempfile.TemporaryDirectory(prefix="kiln-bench-") as tmp:
            folder = Path(tmp)
            args = ["bench", *self._module_args(device, function), "-o", str(folder / "out"),
                    "--repetitions", str(repetitions), "--warmup", str(warmup)]
            if batch is not None:
                args += ["--batch", str(batch)]
            for p in _save_arrays(inputs, folder, "input"):
                args += ["--input", p]
            _, report = _binary.run_json(args)
        return BenchStats.from_json(report)


class _Progress:
    """A tqdm bar over compile units, fed by ``kiln compile --events``."""

    def __init__(self, wanted: bool | None, total: int) -> None:
        self.bar = None
        if wanted is False:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            if wanted:
                raise ImportError("progress=True needs tqdm: pip install tqdm (or kiln[progress])") from None
            return
        self.bar = tqdm(total=total, desc="kiln compile", unit="module")

    def __call__(self, event: dict[str, Any]) -> None:
        if self.bar is None:
            return
        if event.get("event") == "started":
            self.bar.set_postfix_str(f"{event.get('target')}: compiling")
        elif event.get("event") == "finished":
            how = "cached" if event.get("cache_hit") else "built" if event.get("ok") else event.get("code", "failed")
            self.bar.set_postfix_str(f"{event.get('target')}: {how}")
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def compile(fn_or_exported: Any, *arg_specs: Any, targets: str | Sequence[str] = ("cpu", "cuda:h100"),
            out_dir: str | Path | None = None, precision: str | None = None, name: str | None = None,
            progress: bool | None = None, **options: Any) -> list[Module]:
    """Compiles a JAX function or StableHLO program into IREE modules, one per target (``kiln compile``).

    Args:
        fn_or_exported: a JAX function (jitted or plain) followed by its argument specs, a
            ``jax.export.Exported``, StableHLO text (``str``), StableHLO bytecode or a portable artifact
            (``bytes``), or the path of a StableHLO file.
        *arg_specs: for a function, one ``jax.ShapeDtypeStruct`` (or array) per argument; symbolic
            shapes (``jax.export.symbolic_shape``) give dynamic dimensions.
        targets: target specs (docs/targets.md), e.g. ``["cpu", "cuda:h100"]``; a string for one.
        out_dir: where the modules, their metadata and the StableHLO go; default: a new temporary
            folder, which is left in place for the modules.
        precision: ``"highest"`` (default), ``"f16-inputs"`` or ``"bf16-inputs"``.
        name: base name of the outputs; default: the function's or file's name.
        progress: a tqdm bar over the units: True, False, or None (when tqdm is installed).
        **options: ``opt_level`` ("O0".."O3"), ``data_tiling`` (bool), ``flags`` (extra iree-compile
            flags), ``timeout`` (seconds per compile), ``jobs``, ``cache`` (False: no artifact cache),
            ``explain_cache``, ``invocation`` ("sync"/"async"), ``tuning`` (False: ignore tuning
            records), ``executor`` ("local"/"docker"), ``keep_f64``, ``bind`` (sizes for a
            shape-polymorphic export's symbolic dimensions: ``{"b": 8}`` or a list of such dicts; one
            static module per binding and target, named ``NAME.b8.TARGET``).

    Returns:
        One :class:`Module` per target (with ``bind``, per target and binding), in the order of
        ``targets``.

    Raises:
        InvalidArgumentError: an unknown target or option, bad argument specs, unreadable StableHLO.
        CompileFailedError: the compiler rejected the program (its diagnostics in the message).
        KilnError: any other failure; when some targets succeeded, ``error.modules`` holds them.
    """
    target_list = [targets] if isinstance(targets, str) else list(targets)
    if not target_list:
        raise InvalidArgumentError("no target: give targets=[...], e.g. ['cpu', 'cuda:h100'] (kiln targets lists them)")
    flags = _option_flags(options)
    folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="kiln-"))
    folder.mkdir(parents=True, exist_ok=True)
    source = write_stablehlo(fn_or_exported, arg_specs, folder, name)
    args = ["compile", str(source), "-o", str(folder), "--events"]
    for t in target_list:
        args += ["--target", t]
    if name is not None:
        args += ["--name", name]
    if precision is not None:
        args += ["--precision", precision]
    args += flags
    units = len(target_list) * (len(bindings(options["bind"])) if options.get("bind") is not None else 1)
    bar = _Progress(progress, units)
    try:
        _, result = _binary.run_json(args, ok_statuses=None, on_event=bar)
    finally:
        bar.close()
    if "units" not in result:
        raise error_for("internal", f"kiln compile printed no units: {json.dumps(result)[:300]}")
    modules, failures = [], []
    for unit in result["units"]:
        if unit.get("ok"):
            modules.append(Module(unit["module"], unit.get("record", {}), unit.get("metadata"),
                                  bool(unit.get("cache_hit"))))
        else:
            failures.append(unit)
    if failures:
        first = failures[0]
        err = first.get("error", {})
        message = "; ".join(f"{u.get('target')}: {u.get('error', {}).get('message', '')}" for u in failures)
        error: KilnError = error_for(str(err.get("code", "internal")), message)
        error.modules = modules  # type: ignore[attr-defined]
        raise error
    return modules


def inspect(source: Any, *arg_specs: Any) -> ModuleInfo:
    """Describes a StableHLO program (``kiln inspect``): module name, format, dialects, public signatures.

    Takes what :func:`compile` takes.
    """
    with tempfile.TemporaryDirectory(prefix="kiln-inspect-") as tmp:
        path = write_stablehlo(source, arg_specs, Path(tmp), None)
        _, info = _binary.run_json(["inspect", str(path)])
    return ModuleInfo.from_json(info)


def cache_stats() -> CacheStats:
    """The artifact cache's folder, size and hit/miss counters (``kiln cache stats``)."""
    _, stats = _binary.run_json(["cache", "stats"])
    return CacheStats.from_json(stats)
