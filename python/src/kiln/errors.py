"""kiln's errors as Python exceptions.

The binary reports every failure as a code and a message (``kiln: error: ...``
on stderr, ``{"ok": false, "error": {"code", "message"}}`` with ``--json``); the
service answers ``{"error": {"code", "message"}}``. Each code has its own
exception class, all under :class:`KilnError`, so callers can catch broadly or
precisely. Codes that also have a standard Python meaning derive from that
exception too (an invalid argument is a ``ValueError``).
"""

from __future__ import annotations

from typing import Any


class KilnError(Exception):
    """A failure reported by kiln.

    Attributes:
        code: kiln's error code, e.g. ``"invalid_argument"`` (docs/cli.md).
        message: kiln's message, as the command line prints it.
        exit_status: the binary's exit status, when the error came from it.
        http_status: the HTTP status, when the error came from ``kiln serve``.
    """

    code = "internal"

    def __init__(self, message: str, *, code: str | None = None, exit_status: int | None = None,
                 http_status: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message
        self.exit_status = exit_status
        self.http_status = http_status

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"


class InvalidArgumentError(KilnError, ValueError):
    """Bad input or usage: a wrong shape or dtype, an unknown target, a bad option (exit 2)."""

    code = "invalid_argument"


class NotFoundError(KilnError, LookupError):
    """A file, job or setting points nowhere (exit 3, HTTP 404)."""

    code = "not_found"


class FailedPreconditionError(KilnError):
    """kiln cannot do it here: no IREE toolchain, or one of another release (exit 4)."""

    code = "failed_precondition"


class CompileFailedError(KilnError):
    """The IREE compiler rejected the program; the message holds its diagnostics (exit 5)."""

    code = "compile_failed"


class DeadlineExceededError(KilnError, TimeoutError):
    """A time limit ran out (exit 6)."""

    code = "deadline_exceeded"


class ResourceExhaustedError(KilnError):
    """Out of a resource: disk, memory, or the service's queue is full (exit 7, HTTP 413/429)."""

    code = "resource_exhausted"


class UnavailableError(KilnError, ConnectionError):
    """A service did not answer (exit 8)."""

    code = "unavailable"


class CancelledError(KilnError):
    """Interrupted or cancelled (exit 130)."""

    code = "cancelled"


class UnauthenticatedError(KilnError, PermissionError):
    """The service refused the bearer token (HTTP 401)."""

    code = "unauthenticated"


class InternalError(KilnError):
    """A crashed compiler or a bug in kiln (exit 70)."""

    code = "internal"


_BY_CODE: dict[str, type[KilnError]] = {
    cls.code: cls
    for cls in (InvalidArgumentError, NotFoundError, FailedPreconditionError, CompileFailedError,
                DeadlineExceededError, ResourceExhaustedError, UnavailableError, CancelledError,
                UnauthenticatedError, InternalError)
}


def error_for(code: str, message: str, **where: Any) -> KilnError:
    """The exception for one of kiln's error codes (KilnError itself for a code it does not know)."""
    return _BY_CODE.get(code, KilnError)(message, code=code, **where)
