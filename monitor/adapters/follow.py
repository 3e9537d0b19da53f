"""Tail a growing log across rotation, resuming from a saved position after a restart.

The position (the file's device and inode, the byte offset of the first line not yet handed
out) is written atomically after the consumer has safely delivered the lines before it, so a
crash re-reads at most the last poll's lines (content-based event ids make that harmless).

Rotation: when the path names another file (logrotate's rename + create), the rest of the old
file is read to its end first, then the new one from its start. A file that shrank (copytruncate)
is read again from its start. A line without its newline yet is left for the next poll.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO


@dataclass
class Position:
    device: int
    inode: int
    offset: int


def _identity(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino


class Follower:
    def __init__(self, path: str | Path, position_file: str | Path | None = None) -> None:
        self.path = Path(path)
        self.position_file = Path(position_file) if position_file else None
        self._handle: IO[bytes] | None = None
        self._identity: tuple[int, int] | None = None
        self._offset = 0  # of the first byte not handed out
        self._resume = self._load()

    def _load(self) -> Position | None:
        if self.position_file is None or not self.position_file.exists():
            return None
        try:
            data = json.loads(self.position_file.read_text())
            return Position(int(data["device"]), int(data["inode"]), int(data["offset"]))
        except (ValueError, KeyError, TypeError):
            return None  # a damaged position file: start over (ids make re-reading harmless)

    def _open_current(self) -> bool:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return False
        identity = _identity(os.fstat(handle.fileno()))
        self._handle, self._identity, self._offset = handle, identity, 0
        resume = self._resume
        if resume is not None and (resume.device, resume.inode) == identity:
            size = os.fstat(handle.fileno()).st_size
            self._offset = resume.offset if resume.offset <= size else 0
        self._resume = None
        handle.seek(self._offset)
        return True

    def _read_complete_lines(self) -> list[bytes]:
        assert self._handle is not None
        self._handle.seek(self._offset)
        data = self._handle.read()
        end = data.rfind(b"\n")
        if end < 0:
            return []
        chunk = data[: end + 1]
        self._offset += len(chunk)
        return chunk.splitlines(keepends=True)

    def poll(self) -> list[bytes]:
        """Complete lines written since the last poll (old file's tail first on rotation)."""
        if self._handle is None and not self._open_current():
            return []
        assert self._handle is not None
        lines = self._read_complete_lines()
        try:
            current = _identity(os.stat(self.path))
        except FileNotFoundError:
            return lines  # rotated away, new file not created yet
        if current != self._identity:
            # A line the old file never finished is handed out without its newline: the
            # caller counts it as damaged instead of losing it silently.
            self._handle.seek(self._offset)
            rest = self._handle.read()
            if rest:
                lines.append(rest)
            self._handle.close()
            self._handle = None
            if self._open_current():
                lines += self._read_complete_lines()
        elif os.fstat(self._handle.fileno()).st_size < self._offset:
            self._offset = 0  # truncated in place
            lines += self._read_complete_lines()
        return lines

    def commit(self) -> None:
        """Record that every line handed out so far is safely delivered."""
        if self.position_file is None or self._identity is None:
            return
        device, inode = self._identity
        tmp = self.position_file.with_suffix(self.position_file.suffix + ".tmp")
        tmp.write_text(json.dumps({"path": str(self.path), "device": device, "inode": inode,
                                   "offset": self._offset}))  # fmt: skip
        os.replace(tmp, self.position_file)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
