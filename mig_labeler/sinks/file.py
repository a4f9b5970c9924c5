"""The file sink: an NFD local-source features.d file (gfd-reference §6.1), done better than GFD.

Owns: the format (one ``key=value`` line per label, sorted, no comments), the atomic write (a
hidden temporary file in the same directory, fsync, rename, fsync of the directory), writing
only when the content changes, and the start-up check that the directory is writable. The file
is never deleted on exit: GFD deletes it and the node's labels vanish with every restart
(k8s-device-plugin#796). ``-`` writes to standard output instead.

Ownership: beside the file, a hidden marker (``.<name>.mig-labeler``, which NFD ignores) holds
the SHA-256 of what we last wrote. ``retire`` (after a switch to another sink) removes the file
only while it still holds exactly that, so GFD's own file at the same path is never deleted.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from mig_labeler.config import DEFAULT_OUTPUT_FILE
from mig_labeler.errors import OutputError, SinkError
from mig_labeler.sinks import SinkResult
from mig_labeler.sinks.plan import plan_update

__all__ = ["DEFAULT_OUTPUT_FILE", "FileSink"]
STDOUT = "-"


def render(labels: Mapping[str, str]) -> str:
    return "".join(f"{key}={labels[key]}\n" for key in sorted(labels))


def parse(text: str) -> dict[str, str]:
    """As NFD reads it: split at the first ``=``, a bare key means ``true``, ``#`` lines skipped."""
    labels: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            labels[key] = value if sep else "true"
    return labels


class FileSink:
    name = "file"
    feeds_nfd = True

    def __init__(self, path: str = DEFAULT_OUTPUT_FILE) -> None:
        self.path = path
        self.written: str | None = None  # for stdout: what we wrote last

    @property
    def marker(self) -> Path:
        path = Path(self.path)
        return path.with_name(f".{path.name}.mig-labeler")

    def check(self) -> FileSink:
        """At start-up: the directory exists and we can create files in it (one line, exit 2)."""
        if self.path == STDOUT:
            return self
        directory = Path(self.path).parent
        if not directory.is_dir():
            raise OutputError(f"cannot write the features file {self.path}: directory {directory} does not exist "
                              "(mount NFD's features.d there, or choose --output-file)")
        try:
            with tempfile.NamedTemporaryFile(dir=directory, prefix=f".{Path(self.path).name}.check"):
                pass
        except OSError as e:
            raise OutputError(f"cannot write the features file {self.path}: {e.strerror or e} in {directory}") from None
        if Path(self.path).is_dir():
            raise OutputError(f"cannot write the features file {self.path}: it is a directory")
        return self

    def publish(self, labels: Mapping[str, str]) -> SinkResult:
        content = render(labels)
        current = self.written if self.path == STDOUT else self._read()
        live = parse(current or "")
        plan = plan_update(live, set(live), labels)
        if current == content:
            return SinkResult(self.name, plan)
        if self.path == STDOUT:
            self._write_stdout(content)
        else:
            self._write(content)
        self.written = content
        return SinkResult(self.name, plan, plan)

    def retire(self) -> SinkResult | None:
        """Remove the file if it is still exactly what we wrote; never anyone else's."""
        if self.path == STDOUT:
            return None
        try:
            recorded = self.marker.read_text().strip()
        except OSError:
            return None  # we never wrote it (or the directory is not mounted here)
        current = self._read()
        if current is None or hashlib.sha256(current.encode()).hexdigest() != recorded:
            self._unlink(self.marker)  # someone else's file now: forget it, leave it
            return None
        live = parse(current)
        self._unlink(Path(self.path))
        self._unlink(self.marker)
        plan = plan_update(live, set(live), {})
        return SinkResult(self.name, plan, plan)

    def _read(self) -> str | None:
        try:
            return Path(self.path).read_text(errors="replace")
        except FileNotFoundError:
            return None
        except OSError as e:
            raise SinkError(f"cannot read the features file {self.path}: {e.strerror or e}") from None

    def _write(self, content: str) -> None:
        path = Path(self.path)
        try:
            _atomic_write(path, content.encode())
            _atomic_write(self.marker, hashlib.sha256(content.encode()).hexdigest().encode() + b"\n")
        except OSError as e:
            raise SinkError(f"cannot write the features file {self.path}: {e.strerror or e}") from None

    @staticmethod
    def _write_stdout(content: str) -> None:
        try:
            sys.stdout.write(content)
            sys.stdout.flush()
        except OSError as e:
            raise SinkError(f"cannot write the labels to standard output: {e.strerror or e}") from None

    @staticmethod
    def _unlink(path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        except OSError as e:
            raise SinkError(f"cannot remove {path}: {e.strerror or e}") from None


def _atomic_write(path: Path, data: bytes) -> None:
    """A hidden temporary file in the same directory (NFD skips dot-files), fsync, rename over the
    target, fsync the directory: a reader sees the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), 0o644)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
