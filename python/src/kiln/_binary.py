"""Running the kiln binary and reading its JSON.

Every operation of the package is one run of the binary with ``--json``. The
binary is the one inside the wheel (``kiln/bin/kiln``), or ``$KILN_BINARY``.
It is pointed at the IREE toolchain of the Python environment the package is
installed in (the ``iree-base-compiler`` and ``iree-base-runtime`` wheels this
package depends on) through ``KILN_IREE_DIR``, unless that is set already.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import InternalError, KilnError, NotFoundError, error_for

_PACKAGE_DIR = Path(__file__).resolve().parent


def binary() -> Path:
    """The kiln binary this package runs: ``$KILN_BINARY``, else the one installed with the package."""
    configured = os.environ.get("KILN_BINARY")
    if configured:
        path = Path(configured)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise NotFoundError(f"KILN_BINARY is {configured}, which is not an executable file")
        return path
    bundled = _PACKAGE_DIR / "bin" / "kiln"
    if bundled.is_file():
        return bundled
    raise NotFoundError("this kiln package has no binary: install it with `pip install ./python` (which builds one), "
                        "or set KILN_BINARY to a kiln executable")


def iree_environment() -> Path | None:
    """The folder holding the ``iree`` package of this Python environment, or None without the IREE wheels."""
    for module in ("iree.compiler", "iree.runtime"):
        try:
            spec = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            continue
        if spec is not None and spec.submodule_search_locations:
            # <site-packages>/iree/compiler -> <site-packages>
            return Path(next(iter(spec.submodule_search_locations))).resolve().parent.parent
    return None


def environment() -> dict[str, str]:
    """The environment the binary runs in: this one, plus KILN_IREE_DIR when it is not set."""
    env = dict(os.environ)
    if not env.get("KILN_IREE_DIR"):
        found = iree_environment()
        if found is not None:
            env["KILN_IREE_DIR"] = str(found)
    return env


def _error_from(stdout: str, stderr: str, status: int) -> KilnError:
    try:
        doc = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
        err = doc["error"]
        return error_for(str(err.get("code", "internal")), str(err.get("message", "")), exit_status=status)
    # No JSON error (a crash, or an option parser that stopped first): the last line of stderr.
    lines = [line for line in stderr.splitlines() if line.strip()]
    message = lines[-1] if lines else f"kiln exited with status {status}"
    prefix = "kiln: error: "
    if message.startswith(prefix):
        message = message[len(prefix):]
    code = {2: "invalid_argument", 3: "not_found", 4: "failed_precondition", 5: "compile_failed",
            6: "deadline_exceeded", 7: "resource_exhausted", 8: "unavailable", 130: "cancelled"}.get(status, "internal")
    return error_for(code, message, exit_status=status)


def run_json(args: Sequence[str], *, ok_statuses: Sequence[int] | None = (0,),
             on_event: Callable[[dict[str, Any]], None] | None = None) -> tuple[int, Any]:
    """Runs ``kiln ARGS --json`` and returns (exit status, parsed stdout).

    An exit status outside ``ok_statuses`` (None: any status), or a JSON error
    object on stdout with a non-zero status, raises the error kiln reported. With
    ``on_event``, every stderr line that is a JSON object is passed to it as it
    arrives (``kiln compile --events``).
    """
    argv = [str(binary()), *[str(a) for a in args], "--json"]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=environment(), text=True, errors="replace")
    out: list[str] = []
    # stdout is read on its own thread so that neither pipe can fill and stall the child.
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    err_lines: list[str] = []
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if on_event is not None and line.startswith("{"):
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    event = None
                if isinstance(event, dict):
                    on_event(event)
                    continue
            err_lines.append(line)
        status = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    reader.join()
    stdout, stderr = (out[0] if out else ""), "".join(err_lines)
    try:
        doc = json.loads(stdout)
    except json.JSONDecodeError:
        doc = None
    failed = isinstance(doc, dict) and doc.get("ok") is False and isinstance(doc.get("error"), dict)
    if status != 0 and (failed or doc is None or (ok_statuses is not None and status not in ok_statuses)):
        raise _error_from(stdout, stderr, status)
    if doc is None:
        raise InternalError(f"kiln {args[0] if args else ''} printed no JSON; stderr: {stderr.strip()[-500:]}")
    return status, doc


def run_text(args: Sequence[str]) -> str:
    """Runs ``kiln ARGS`` and returns its stdout (for the commands without JSON output)."""
    proc = subprocess.run([str(binary()), *[str(a) for a in args]], stdin=subprocess.DEVNULL, capture_output=True,
                          env=environment(), text=True, errors="replace")
    if proc.returncode != 0:
        raise _error_from("", proc.stderr, proc.returncode)
    return proc.stdout
