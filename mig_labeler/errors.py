"""The project's own exception types and their documented exit codes.

Owns: the error hierarchy and ``is_transient``. Library exceptions (``NVMLError_*``,
``ApiException``, urllib3 errors) are translated into these in the one boundary module that
caught them. Only the CLI turns an error into a log line and an exit code.

Exit codes (README, "Exit codes"):
  0  success
  1  runtime failure (NVML unusable with --fail-on-init-error, node not found, API error)
  2  bad input (unknown strategy, malformed config file, unreadable fixture, missing node name)
  130  Ctrl-C (SIGINT) on labels, diff or check (128 + SIGINT)
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

FIXTURE_HINT = "to try mig-labeler without a GPU, add --fixture dgx-a100-mixed (or any fixture file)"


class MigLabelerError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with when this error ends a command."""

    exit_code = EXIT_RUNTIME


class ConfigError(MigLabelerError):
    """A flag, environment variable or config file value is invalid."""

    exit_code = EXIT_BAD_INPUT


class OutputError(MigLabelerError):
    """The command's output cannot be written (a full disk, a closed terminal)."""

    exit_code = EXIT_BAD_INPUT


class WorkloadsDoNotFit(MigLabelerError):
    """``check``: at least one workload lands on no node (exit 1)."""


class FixtureError(ConfigError):
    """A fixture file is unreadable or does not follow the fixture format."""


class NvmlUnavailable(MigLabelerError):
    """NVML cannot be used at all: no library, no driver, init failed."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NvmlQueryFailed(MigLabelerError):
    """An NVML call failed in a way that makes this pass's topology unusable."""

    def __init__(self, call: str, gpu: int | None, code: int | None, detail: str = "") -> None:
        where = f" on GPU {gpu}" if gpu is not None else ""
        why = detail or f"NVML error code {code}"
        super().__init__(f"NVML call {call}{where} failed: {why}")
        self.call = call
        self.gpu = gpu
        self.code = code


class AllGpusLost(NvmlQueryFailed):
    """Every GPU NVML enumerates is gone: there is nothing true to label, so the pass fails and the
    published labels stay (``lost``: the ``topology.LostGpu`` of each, for reports)."""

    def __init__(self, lost: tuple[Any, ...]) -> None:
        said = "; ".join(f"{gpu.describe()}: {gpu.error}" for gpu in lost)
        MigLabelerError.__init__(self, f"every GPU NVML lists is lost: {said}")
        self.call = "nvmlDevice"
        self.gpu = lost[0].index if len(lost) == 1 else None
        self.code = None
        self.lost = lost


class InvalidLabel(MigLabelerError):
    """A computed label key or value is not valid for Kubernetes; it is never published."""

    def __init__(self, key: str, value: str, reason: str) -> None:
        super().__init__(f"label {key}={value!r} is invalid: {reason}")
        self.key = key
        self.value = value
        self.reason = reason


class SinkError(MigLabelerError):
    """A sink other than the Kubernetes API failed: the features file cannot be written."""


class NodeNotFound(MigLabelerError):
    """The Node named by --node-name does not exist."""


class ApiError(MigLabelerError):
    """The Kubernetes API answered with an error we do not retry, or retries ran out."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class ApiTransient(ApiError):
    """A failure worth retrying: connection error, timeout, 409, 429, 5xx."""


class ApiConflict(ApiTransient):
    """409: the object changed under us; re-read and try again."""


class Interrupted(MigLabelerError):
    """SIGINT or SIGTERM ended a command other than ``run`` (130 or 143, as a shell reports them)."""

    def __init__(self, signal_name: str) -> None:
        super().__init__(f"interrupted by {signal_name}")
        self.exit_code = EXIT_INTERRUPTED if signal_name == "SIGINT" else 143


class Stopped(MigLabelerError):
    """A stop request (SIGTERM, SIGINT) ended a wait: the request in flight was abandoned."""

    def __init__(self, message: str, signal_name: str = "") -> None:
        super().__init__(message)
        self.signal_name = signal_name


def is_transient(exc: BaseException) -> bool:
    """The one predicate the retry policy uses."""
    return isinstance(exc, ApiTransient)
