"""Hashing wrappers: measure a stream, or check it against a recorded sha256 and size.

Used on both sides of encryption: the ciphertext against ``encrypted.json``, the
plaintext against the backup's own manifest.
"""

from __future__ import annotations

import hashlib
import io
from typing import IO, Any, BinaryIO

from moodump.errors import IntegrityError

ByteStream = IO[bytes] | BinaryIO | io.RawIOBase | io.BufferedIOBase
"""Anything with ``read`` (sources) or ``write`` (destinations) of bytes."""


def name_of(stream: Any, name: str | None) -> str:
    """What errors call a stream: ``name``, else the stream's own ``name``."""
    return name or str(getattr(stream, "name", "") or "<stream>")


class HashingReader(io.RawIOBase):
    """Reads through ``raw``, hashing; at its end, checks the sha256 and size expected.

    The check runs when a read returns the end of ``raw`` (or in :meth:`finish`, which
    reads what is left): a mismatch raises :class:`IntegrityError` naming the file, in
    place of the end of the stream, so a consumer can never take a damaged file for a
    complete one. With no expectation it only measures (``size``, ``hexdigest()``).
    """

    def __init__(
        self,
        raw: ByteStream,
        *,
        name: str | None = None,
        sha256: str | None = None,
        size: int | None = None,
        where: str = "the manifest",
        closefd: bool = True,
    ) -> None:
        super().__init__()
        self._raw: Any = raw
        self.name = name_of(raw, name)
        self._expect_sha = sha256
        self._expect_size = size
        self._where = where
        self._closefd = closefd
        self._hash = hashlib.sha256()
        self.size = 0
        self.at_end = False

    def readable(self) -> bool:
        return True

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size) if size is not None and size >= 0 else self._raw.read()
        data = data or b""
        if data:
            self._count(data)
        elif size != 0:
            self._check()
        return bytes(data)

    def readinto(self, buffer: Any) -> int:
        mv = memoryview(buffer).cast("B")
        n = self._raw.readinto(mv) if hasattr(self._raw, "readinto") else None
        if n is None:
            data = self._raw.read(len(mv)) or b""
            n = len(data)
            mv[:n] = data
        if n:
            self._count(mv[:n])
        elif len(mv):
            self._check()
        return n

    def _count(self, data: Any) -> None:
        self._hash.update(data)
        self.size += len(data)
        if self._expect_size is not None and self.size > self._expect_size:
            raise IntegrityError(
                f"{self.name} is longer than {self._where} says ({self._expect_size} bytes)",
                hint="the file was altered or replaced; use another backup",
            )

    def _check(self) -> None:
        self.at_end = True
        if self._expect_size is not None and self.size != self._expect_size:
            raise IntegrityError(
                f"{self.name} has {self.size} bytes, {self._where} says {self._expect_size} "
                "(truncated or replaced)",
                hint="the backup is damaged; use another one",
            )
        if self._expect_sha is not None and self.hexdigest() != self._expect_sha:
            raise IntegrityError(
                f"{self.name} does not match its sha256 in {self._where} (damaged or altered)",
                hint="the backup is damaged; use another one",
            )

    def finish(self) -> tuple[int, str]:
        """Read to the end (discarding), check, and return (size, sha256)."""
        while not self.at_end:
            self.read(1 << 20)
        return self.size, self.hexdigest()

    def close(self) -> None:
        """Close without checking (an early close is an abort, not a claim of completeness)."""
        if not self.closed and self._closefd:
            self._raw.close()
        super().close()


class HashingWriter(io.RawIOBase):
    """Writes through to ``raw``, counting and hashing what passes (the file as stored)."""

    def __init__(self, raw: IO[bytes] | BinaryIO, *, closefd: bool = True) -> None:
        super().__init__()
        self._raw = raw
        self._closefd = closefd
        self._hash = hashlib.sha256()
        self.size = 0
        self.name = getattr(raw, "name", "<stream>")

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        mv = memoryview(data).cast("B")
        self._raw.write(mv)
        self._hash.update(mv)
        self.size += len(mv)
        return len(mv)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()

    def flush(self) -> None:
        if not self._raw.closed:
            self._raw.flush()

    def close(self) -> None:
        if not self.closed:
            self.flush()
            if self._closefd:
                self._raw.close()
        super().close()
