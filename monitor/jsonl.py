"""Reading JSONL inputs: files, ``-`` for stdin, ``.gz`` transparently.

Lines end in ``\\n`` or ``\\r\\n``. Input is read in large chunks and split in bulk (far cheaper
per line than ``readline``); a pathological line is not held in memory past a cap, so one huge
line cannot exhaust the process.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

_CHUNK = 1 << 20
# Over-long lines are rejected as too_large anyway; past this many bytes the rest is dropped.
MAX_KEPT_LINE_BYTES = 4 << 20


class TruncatedLine(bytes):
    """The kept start of a line longer than :data:`MAX_KEPT_LINE_BYTES`."""

    original_length: int

    def __new__(cls, kept: bytes, original_length: int) -> TruncatedLine:
        line = super().__new__(cls, kept)
        line.original_length = original_length
        return line


@contextmanager
def open_input(name: str) -> Iterator[BinaryIO]:
    """Open an input by name: ``-`` is stdin, a ``.gz`` suffix means gzip."""
    if name == "-":
        yield sys.stdin.buffer
        return
    path = Path(name)
    if path.suffix == ".gz":
        with gzip.open(path, "rb") as handle:
            yield handle  # type: ignore[misc]
    else:
        with path.open("rb") as handle:
            yield handle


def _strip_cr(raw: bytes) -> bytes:
    return raw[:-1] if raw.endswith(b"\r") else raw


def _finish(pending: bytes, pending_length: int) -> bytes:
    line = _strip_cr(pending)
    if pending_length > len(pending):
        return TruncatedLine(line, pending_length)
    return line


def iter_lines(handle: BinaryIO) -> Iterator[bytes]:
    """Yield every line without its terminator, blank ones too so numbering stays true."""
    pending = b""  # start of a line whose end is in a later chunk
    pending_length = 0  # its real length, which exceeds len(pending) once truncated
    while chunk := handle.read(_CHUNK):
        parts = chunk.split(b"\n")
        if pending_length:
            head = parts[0]
            room = MAX_KEPT_LINE_BYTES - len(pending)
            pending += head[:room] if room > 0 else b""
            pending_length += len(head)
            if len(parts) == 1:
                continue
            yield _finish(pending, pending_length)
            pending, pending_length = b"", 0
            parts = parts[1:]
        last = parts.pop()
        for raw in parts:
            yield raw[:-1] if raw[-1:] == b"\r" else raw
        if last:
            pending = last[:MAX_KEPT_LINE_BYTES]
            pending_length = len(last)
    if pending_length:
        yield _finish(pending, pending_length)
