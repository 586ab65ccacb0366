"""Streaming age encryption and decryption with bounded memory.

pyrage (1.4) offers whole-buffer functions and two *pumps*, ``encrypt_io(reader, writer,
recipients)`` and ``decrypt_io(reader, writer, identities)``, that copy from one
file-like object to another until the end. A restore needs the opposite shape: a
*reader* that yields plaintext as a decompressor pulls on it, from a source that may
itself be a network stream. So each pump runs in a worker thread with one side
connected to a :class:`_Pipe`, a byte queue bounded to ``PIPE_CAPACITY``:

- :func:`open_decrypting`: ciphertext source → ``decrypt_io`` → pipe → ``read()``;
- :func:`open_encrypting_reader`: plaintext source → ``encrypt_io`` → pipe → ``read()``
  (upload ciphertext to object storage without a temporary file);
- :func:`open_encrypting`: ``write()`` → pipe → ``encrypt_io`` → destination.

Memory stays at the pipe's capacity plus age's 64 KiB chunk, whatever the file size.
pyrage holds the GIL while it computes and calls back into Python for every 8 KiB;
the pipe's blocking waits release it, so producer and consumer take turns.

Errors never pass through as pyrage's or as short plaintext. age authenticates every
64 KiB chunk before pyrage hands it over, and flags the last one, so a bit flip or a
truncation makes ``decrypt_io`` fail; the worker records the failure and the reader
raises it (as :class:`IntegrityError` naming the file) instead of returning the end of
the stream. Exceptions raised by the source or destination themselves (a network
error, a sha256 mismatch found by a :class:`HashingReader`) are kept and re-raised as
they were, since pyrage only passes their text on.
"""

from __future__ import annotations

import contextlib
import io
import threading
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, BinaryIO, cast

import pyrage

from moodump.compression import storage_error
from moodump.crypto.hashing import ByteStream, name_of
from moodump.crypto.keys import Identity, Recipient, native_identities, native_recipients
from moodump.errors import ConfigError, DecryptionError, IntegrityError, MoodumpError, StorageError

PIPE_CAPACITY = 1 << 20
"""Bytes a pipe holds before its producer waits (plus at most one pending piece)."""

READ_BUFFER = 1 << 20
"""Buffer of the BufferedReader that :func:`open_decrypting` returns."""

_PIECE = 1 << 20  # EncryptingWriter splits larger writes so one write cannot flood the pipe


class _Cancelled(BrokenPipeError):
    """The other end of a pipe went away (reader closed early, writer aborted)."""


class _Pipe:
    """A bounded byte queue between one producer and one consumer thread."""

    def __init__(self, capacity: int = PIPE_CAPACITY) -> None:
        self._capacity = capacity
        self._items: deque[bytes] = deque()
        self._offset = 0  # bytes of _items[0] already consumed
        self._size = 0
        self._cond = threading.Condition()
        self._finished = False
        self._error: BaseException | None = None
        self._cancelled = False
        self._delivered = False  # any data put, or finished

    def put(self, data: bytes) -> None:
        """Queue ``data``; wait while the pipe is full. Raises _Cancelled once cancelled."""
        if not data:
            return
        with self._cond:
            while self._size >= self._capacity and not self._cancelled:
                self._cond.wait()
            if self._cancelled:
                raise _Cancelled("the reading side was closed")
            self._items.append(data)
            self._size += len(data)
            self._delivered = True
            self._cond.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        """No more data; ``error`` (if any) is raised to the consumer after what is queued."""
        with self._cond:
            self._finished = True
            self._error = error
            self._delivered = True
            self._cond.notify_all()

    def cancel(self) -> None:
        """Wake and fail a waiting producer; drop what is queued."""
        with self._cond:
            self._cancelled = True
            self._items.clear()
            self._size = 0
            self._cond.notify_all()

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    def wait_delivered(self) -> BaseException | None:
        """Wait for the first data or the end; the error if it ended before any data."""
        with self._cond:
            while not self._delivered:
                self._cond.wait()
            return self._error if self._finished and not self._items else None

    def read_into(self, out: memoryview) -> int:
        """Copy queued bytes into ``out``; wait when empty. 0 only at a clean end."""
        with self._cond:
            while not self._items and not self._finished and not self._cancelled:
                self._cond.wait()
            if self._cancelled:
                raise _Cancelled("the other side of the pipe was closed")
            if not self._items:
                if self._error is not None:
                    raise self._error
                return 0
            n = 0
            while self._items and n < len(out):
                head = self._items[0]
                take = min(len(head) - self._offset, len(out) - n)
                out[n : n + take] = head[self._offset : self._offset + take]
                n += take
                self._offset += take
                if self._offset == len(head):
                    self._items.popleft()
                    self._offset = 0
            self._size -= n
            self._cond.notify_all()
            return n

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes (pyrage asks for 8 KiB); b"" at the end."""
        if size is None or size < 0:
            size = self._capacity
        buf = bytearray(size)
        n = self.read_into(memoryview(buf))
        return bytes(buf[:n])


class _Source:
    """What pyrage reads from: records the source's own exception before pyrage flattens it."""

    def __init__(self, read: Callable[[int], bytes], pipe: _Pipe | None = None) -> None:
        self._read = read
        self._pipe = pipe
        self.error: BaseException | None = None

    def read(self, size: int = -1) -> bytes:
        if self._pipe is not None and self._pipe.cancelled:
            self.error = self.error or _Cancelled("the reading side was closed")
            raise self.error
        try:
            return self._read(size) or b""
        except BaseException as exc:
            self.error = self.error or exc
            raise


class _Sink:
    """What pyrage writes to: records the destination's own exception, as _Source does."""

    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self._write = write
        self.error: BaseException | None = None

    def write(self, data: bytes) -> int:
        try:
            self._write(bytes(data))
        except BaseException as exc:
            self.error = self.error or exc
            raise
        return len(data)

    def flush(self) -> None:
        pass


def _translate(
    exc: BaseException, name: str, source: _Source, sink: _Sink, *, decrypting: bool
) -> BaseException:
    """The moodump error for a failed pump: the side's own error first, then pyrage's."""
    own = source.error or sink.error
    if own is not None:
        if isinstance(own, MoodumpError | _Cancelled):
            return own
        if isinstance(own, OSError):
            if own is sink.error:
                return storage_error(own, Path(name))
            return StorageError(
                f"cannot read {name}: {own.strerror or own}",
                hint="check the source (disk or network) and retry",
            )
        return own
    if decrypting and isinstance(exc, pyrage.DecryptError):
        if str(exc) == "No matching keys found":
            return DecryptionError(
                f"no identity given can decrypt {name}",
                hint="it was encrypted to other public keys (or its header is damaged): "
                "pass the matching private key with --identity / MOODUMP_IDENTITY_FILE",
            )
        return IntegrityError(
            f"{name} is not an age-encrypted file or its header is damaged ({exc})",
            hint="this file cannot be decrypted; use another backup",
        )
    if decrypting and isinstance(exc, OSError):
        return IntegrityError(
            f"{name} is damaged or truncated: age authentication failed ({exc})",
            hint="this file cannot be decrypted; use another backup (or another copy of it)",
        )
    if isinstance(exc, pyrage.EncryptError):
        return StorageError(f"cannot encrypt {name}: {exc}", hint="see the message")
    return exc


def _read_tail(src: Callable[[int], bytes], name: str) -> None:
    """After age's last chunk, the source must be at its end (also lets a HashingReader check)."""
    if src(1):
        raise IntegrityError(
            f"{name} has bytes after the end of its age stream",
            hint="the file was altered or concatenated; use another backup",
        )


class _PipeReader(io.RawIOBase):
    """The consumer end of a worker pump: ``read``/``readinto`` from the pipe."""

    def __init__(
        self, pipe: _Pipe, thread: threading.Thread, src: Any, closefd: bool, name: str
    ) -> None:
        super().__init__()
        self._pipe = pipe
        self._thread = thread
        self._src = src
        self._closefd = closefd
        self.name = name

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.closed:
            raise ValueError("I/O operation on closed file")
        mv = memoryview(buffer).cast("B")
        return self._pipe.read_into(mv) if len(mv) else 0

    def close(self) -> None:
        """Stop the worker (after its current read of the source returns) and close it."""
        if self.closed:
            return
        self._pipe.cancel()
        self._thread.join()
        if self._closefd:
            with contextlib.suppress(Exception):
                self._src.close()
        super().close()


def _start_reader(
    pump: Callable[[_Source, _Sink], None],
    src: Any,
    name: str,
    *,
    decrypting: bool,
    closefd: bool,
    capacity: int,
) -> tuple[_PipeReader, _Pipe]:
    pipe = _Pipe(capacity)
    source = _Source(src.read, pipe)
    sink = _Sink(pipe.put)

    def work() -> None:
        # Holds no reference to the _PipeReader, so an abandoned reader is garbage
        # collected, IOBase.__del__ closes it, and the cancel below ends this thread.
        try:
            pump(source, sink)
            _read_tail(source.read, name)
        except BaseException as exc:
            pipe.finish(_translate(exc, name, source, sink, decrypting=decrypting))
        else:
            pipe.finish()

    thread = threading.Thread(target=work, name=f"moodump-age {name}", daemon=True)
    thread.start()
    return _PipeReader(pipe, thread, src, closefd, name), pipe


def open_decrypting(
    src: ByteStream,
    identities: Sequence[Identity],
    *,
    name: str | None = None,
    closefd: bool = True,
    capacity: int = PIPE_CAPACITY,
) -> BinaryIO:
    """A readable file of the plaintext of the age ciphertext read from ``src``.

    Decompression (gzip/zstd) sits on top of it: ``read(n)``, ``readinto``, ``peek`` work
    as on a file (it is a ``BufferedReader``); closing it stops the decryption and
    closes ``src`` (unless ``closefd=False``). ``src`` is read sequentially only, so a
    network stream works; ``name`` (default ``src.name``) is what errors call the file.

    Returns once age has accepted the header, so a missing or non-matching identity
    raises :class:`DecryptionError` here, not at the first read. A damaged or truncated
    stream raises :class:`IntegrityError` from the read that reaches the damage: the
    plaintext before it has passed age's authentication, and the end of the file is
    only ever reported after the final chunk did too.
    """
    label = name_of(src, name)
    natives = native_identities(identities)
    if not natives:
        raise DecryptionError(
            f"{label} is encrypted and no identity was given",
            hint="pass the private key with --identity FILE or MOODUMP_IDENTITY_FILE",
        )
    decrypt_io = cast(Any, pyrage).decrypt_io

    def pump(source: _Source, sink: _Sink) -> None:
        decrypt_io(source, sink, natives)

    raw, pipe = _start_reader(pump, src, label, decrypting=True, closefd=closefd, capacity=capacity)
    error = pipe.wait_delivered()
    if error is not None:
        raw.close()
        raise error
    return cast(BinaryIO, io.BufferedReader(raw, READ_BUFFER))


def open_encrypting_reader(
    src: ByteStream,
    recipients: Sequence[Recipient],
    *,
    name: str | None = None,
    closefd: bool = True,
    capacity: int = PIPE_CAPACITY,
) -> BinaryIO:
    """A readable file of the age ciphertext of what is read from ``src``.

    For uploads that stream: hand it to the storage client (wrapped in a
    :class:`HashingReader` to learn the ciphertext's sha256 and size for the envelope).
    """
    label = name_of(src, name)
    natives = require_recipients(recipients)
    encrypt_io = cast(Any, pyrage).encrypt_io

    def pump(source: _Source, sink: _Sink) -> None:
        encrypt_io(source, sink, natives)

    raw, _ = _start_reader(pump, src, label, decrypting=False, closefd=closefd, capacity=capacity)
    return cast(BinaryIO, io.BufferedReader(raw, READ_BUFFER))


def require_recipients(recipients: Sequence[Recipient]) -> list[Any]:
    natives = native_recipients(recipients)
    if not natives:
        raise ConfigError(
            "encryption needs at least one recipient",
            hint="set MOODUMP_ENCRYPT_RECIPIENTS to one or more age1… or ssh public keys",
        )
    return natives


class EncryptingWriter(io.RawIOBase):
    """A writable file that age-encrypts into ``dst`` (see :func:`open_encrypting`).

    Only :meth:`close` (or leaving a ``with`` block without an exception) writes age's
    final chunk. :meth:`abort`, an exception in the ``with`` block, or garbage
    collection of an unclosed writer leave a truncated age file that every reader
    rejects: a half-written backup file must never decrypt as a complete one.
    """

    def __init__(
        self,
        dst: Any,
        recipients: Sequence[Recipient],
        *,
        name: str,
        closefd: bool,
        capacity: int,
    ) -> None:
        super().__init__()
        natives = require_recipients(recipients)
        self.name = name
        self._dst = dst
        self._closefd = closefd
        self._pipe = _Pipe(capacity)
        self._error: BaseException | None = None
        source = _Source(self._pipe.read)
        sink = _Sink(dst.write)
        encrypt_io = cast(Any, pyrage).encrypt_io

        def work() -> None:
            try:
                encrypt_io(source, sink, natives)
            except BaseException as exc:
                self._error = _translate(exc, name, source, sink, decrypting=False)
            finally:
                self._pipe.cancel()  # wake a write() waiting for room

        self._thread = threading.Thread(target=work, name=f"moodump-age {name}", daemon=True)
        self._thread.start()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if self.closed:
            raise ValueError("write to closed file")
        mv = memoryview(data).cast("B")
        try:
            for start in range(0, len(mv), _PIECE):
                self._pipe.put(bytes(mv[start : start + _PIECE]))
        except _Cancelled:
            self._fail()
        return len(mv)

    def _fail(self) -> None:
        self._thread.join()
        self._close_dst()
        super().close()
        raise self._error or StorageError(f"encrypting {self.name} stopped", hint="retry")

    def _close_dst(self) -> None:
        if self._closefd:
            with contextlib.suppress(Exception):
                self._dst.close()

    def close(self) -> None:
        """Finish the age file (final chunk), wait for it to be written, close ``dst``."""
        if self.closed:
            return
        self._pipe.finish()
        self._thread.join()
        if self._error is not None:
            self._fail()
        try:
            self._dst.flush()
            if self._closefd:
                self._dst.close()
        except OSError as exc:
            raise storage_error(exc, Path(self.name)) from exc
        finally:
            super().close()

    def abort(self) -> None:
        """Stop without finishing: ``dst`` keeps a truncated age file (delete it)."""
        if self.closed:
            return
        self._pipe.cancel()
        self._thread.join()
        self._close_dst()
        super().close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        # IOBase.__del__ would close(), i.e. finish a file nobody said was complete.
        with contextlib.suppress(Exception):
            self.abort()


def open_encrypting(
    dst: IO[bytes] | BinaryIO,
    recipients: Sequence[Recipient],
    *,
    name: str | None = None,
    closefd: bool = True,
    capacity: int = PIPE_CAPACITY,
) -> EncryptingWriter:
    """A writable file whose bytes reach ``dst`` age-encrypted to ``recipients``.

    Put it under a compressor to encrypt data files as the dump writes them (encryption
    at rest), or under a :class:`HashingWriter` to record the ciphertext's sha256.
    """
    return EncryptingWriter(
        dst, recipients, name=name_of(dst, name), closefd=closefd, capacity=capacity
    )
