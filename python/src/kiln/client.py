"""A client of ``kiln serve``, the compile service (docs/service.md).

Only the standard library speaks HTTP here. Programs go up in the form the
CLI's ``kiln compile`` takes them (the same conversion as :func:`kiln.compile`),
options in the job-file schema; the service's JSON errors become the same
exceptions as the binary's.
"""

from __future__ import annotations

import difflib
import json
import os
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._compile import Module, bindings
from ._source import write_stablehlo
from .errors import InvalidArgumentError, UnavailableError, error_for

# Keyword options of Client.submit and the job-schema fields they become.
_SERVICE_OPTIONS = {
    "opt_level": "opt_level",
    "data_tiling": "data_tiling",
    "flags": "extra_flags",
    "timeout": "timeout_seconds",
    "invocation": "invocation",
    "tuning": "tuning",
    "keep_f64": "keep_f64",
    "bind": "bind",
}

FINISHED_STATES = ("succeeded", "failed", "cancelled")


class Job:
    """A job of the compile service, as last read from it.

    Attributes:
        id: the job's id.
        state: ``queued``, ``running``, ``succeeded``, ``failed`` or ``cancelled``.
        raw: the service's whole answer (``GET /v1/jobs/{id}``).
    """

    def __init__(self, client: Client, raw: dict[str, Any]) -> None:
        self.client = client
        self.raw = raw
        self.id: str = str(raw.get("id", ""))
        self.state: str = str(raw.get("state", ""))

    def __repr__(self) -> str:
        return f"Job({self.id!r}, state={self.state!r})"

    @property
    def done(self) -> bool:
        """Whether the job has finished (succeeded, failed or was cancelled)."""
        return self.state in FINISHED_STATES

    @property
    def units(self) -> list[dict[str, Any]]:
        """Per target: ``ok``, ``module``, ``metadata``, ``sha256``, ``cache_hit``, ``links``, or ``error``."""
        return list(self.raw.get("units") or [])

    def refresh(self) -> Job:
        """Reads the job's state again; returns self."""
        self.raw = self.client._request("GET", f"/v1/jobs/{self.id}")
        self.state = str(self.raw.get("state", ""))
        return self

    def cancel(self) -> Job:
        """Cancels the job (a queued one at once; a running one's compiler is stopped)."""
        self.raw = self.client._request("POST", f"/v1/jobs/{self.id}/cancel")
        self.state = str(self.raw.get("state", ""))
        return self

    def wait(self, timeout: float | None = None, poll: float = 0.5, progress: bool | None = None) -> Job:
        """Waits until the job finishes.

        Args:
            timeout: seconds to wait at most (None: no limit); a job still unfinished then raises
                :class:`~kiln.errors.DeadlineExceededError` (the job goes on; cancel it if need be).
            poll: seconds between status reads.
            progress: a tqdm bar with the job's state and elapsed time: True, False, or None (when tqdm
                is installed).

        Raises:
            KilnError: the job failed (kiln's code and message) or was cancelled.
        """
        bar = _state_bar(progress, self.id)
        started = time.monotonic()
        try:
            while True:
                self.refresh()
                if bar is not None:
                    bar.set_postfix_str(self.state)
                    bar.update(0)
                if self.done:
                    break
                if timeout is not None and time.monotonic() - started > timeout:
                    raise error_for("deadline_exceeded", f"job {self.id} is still {self.state} after {timeout:g} s")
                time.sleep(poll)
        finally:
            if bar is not None:
                bar.close()
        if self.state == "failed":
            err = self.raw.get("error") or next((u.get("error") for u in self.units if not u.get("ok")), None) or {}
            raise error_for(str(err.get("code", "internal")), f"job {self.id} failed: {err.get('message', '')}")
        if self.state == "cancelled":
            raise error_for("cancelled", f"job {self.id} was cancelled")
        return self

    def fetch(self, out_dir: str | Path) -> list[Module]:
        """Downloads every module the job made, with its metadata, into ``out_dir``; one Module per target."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        modules = []
        for unit in self.units:
            if not unit.get("ok"):
                continue
            links = unit.get("links", {})
            module = folder / Path(str(unit["module"])).name
            metadata = folder / Path(str(unit["metadata"])).name
            self.client._download(links["module"], module)
            self.client._download(links["metadata"], metadata)
            modules.append(Module(module, json.loads(metadata.read_text()), metadata, bool(unit.get("cache_hit"))))
        return modules


def _state_bar(wanted: bool | None, job_id: str) -> Any:
    if wanted is False:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if wanted:
            raise ImportError("progress=True needs tqdm: pip install tqdm (or kiln[progress])") from None
        return None
    return tqdm(total=None, desc=f"job {job_id[:8]}", bar_format="{desc}: {elapsed} {postfix}")


class Client:
    """Talks to a ``kiln serve`` service.

    Args:
        url: the service, e.g. ``"http://127.0.0.1:8080"``.
        token: a bearer token of the service; default: ``$KILN_TOKEN``.
        timeout: seconds per HTTP request.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.token = token if token is not None else os.environ.get("KILN_TOKEN")
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"Client({self.url!r})"

    def _open(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> Any:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            text = e.read().decode("utf-8", "replace")
            try:
                err = json.loads(text).get("error", {})
            except (json.JSONDecodeError, AttributeError):
                err = {}
            code = str(err.get("code") or {401: "unauthenticated", 404: "not_found", 413: "resource_exhausted",
                                           429: "resource_exhausted"}.get(e.code, "internal"))
            raise error_for(code, str(err.get("message") or text.strip() or e.reason), http_status=e.code) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise UnavailableError(f"the kiln service at {self.url} did not answer: {reason}") from None

    def _request(self, method: str, path: str, body: bytes | None = None, content_type: str | None = None) -> Any:
        with self._open(method, path, body, content_type) as response:
            return json.loads(response.read())

    def _download(self, path: str, to: Path) -> None:
        with self._open("GET", path) as response, tempfile.NamedTemporaryFile(dir=to.parent, delete=False) as f:
            while chunk := response.read(1 << 20):
                f.write(chunk)
        os.replace(f.name, to)

    def submit(self, fn_or_exported: Any, *arg_specs: Any, targets: str | Sequence[str] = ("cpu", "cuda:h100"),
               precision: str | None = None, name: str | None = None, **options: Any) -> Job:
        """Submits a program to compile; returns the queued :class:`Job` at once.

        Takes the program as :func:`kiln.compile` does. ``options``: ``opt_level``, ``data_tiling``,
        ``flags`` (compiler flags the service allows), ``timeout`` (seconds), ``invocation``, ``tuning``,
        ``keep_f64``, ``bind`` (``{"b": 8}`` or a list of such dicts: a static module per binding and target).
        """
        target_list = [targets] if isinstance(targets, str) else list(targets)
        job_options: dict[str, Any] = {}
        if precision is not None:
            job_options["precision"] = precision
        for key, value in options.items():
            if key not in _SERVICE_OPTIONS:
                near = difflib.get_close_matches(key, list(_SERVICE_OPTIONS), n=1)
                hint = f"; did you mean {near[0]!r}?" if near else f" (known: {', '.join(sorted(_SERVICE_OPTIONS))})"
                raise InvalidArgumentError(f"{key!r} is not an option of the compile service{hint}")
            if value is None:
                continue
            if key == "bind":
                value = bindings(value)
            job_options[_SERVICE_OPTIONS[key]] = [value] if key == "flags" and isinstance(value, str) else value
        with tempfile.TemporaryDirectory(prefix="kiln-submit-") as tmp:
            model = write_stablehlo(fn_or_exported, arg_specs, Path(tmp), name).read_bytes()
        fields = {"targets": target_list, **({"options": job_options} if job_options else {})}
        boundary = "kiln-" + uuid.uuid4().hex
        body = b"".join([
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"model\"; filename=\"model\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n".encode(), model, b"\r\n",
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"options\"\r\n"
            "Content-Type: application/json\r\n\r\n".encode(), json.dumps(fields).encode(), b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ])
        raw = self._request("POST", "/v1/jobs", body, f"multipart/form-data; boundary={boundary}")
        return Job(self, raw)

    def job(self, job_id: str) -> Job:
        """A job by id, as the service knows it now."""
        return Job(self, {"id": job_id}).refresh()

    def jobs(self) -> list[Job]:
        """The service's most recent jobs."""
        listed = self._request("GET", "/v1/jobs")
        items = listed.get("jobs", []) if isinstance(listed, dict) else listed
        return [Job(self, j) for j in items]

    def cancel(self, job_id: str) -> Job:
        """Cancels a job by id."""
        return Job(self, {"id": job_id}).cancel()

    def targets(self) -> Any:
        """The targets of the service's IREE release (``GET /v1/targets``)."""
        return self._request("GET", "/v1/targets")

    def compile(self, fn_or_exported: Any, *arg_specs: Any, out_dir: str | Path | None = None,
                wait_timeout: float | None = None, progress: bool | None = None, **kwargs: Any) -> list[Module]:
        """Submits, waits and fetches: the service's counterpart of :func:`kiln.compile`.

        ``wait_timeout`` bounds the wait (seconds); other keywords are those of :meth:`submit`.
        """
        job = self.submit(fn_or_exported, *arg_specs, **kwargs)
        job.wait(timeout=wait_timeout, progress=progress)
        folder = Path(out_dir) if out_dir is not None else Path(tempfile.mkdtemp(prefix="kiln-"))
        return job.fetch(folder)
