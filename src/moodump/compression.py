"""Codecs for data files: gzip through ``isal`` (default) and ``zstandard``.

Writers hash and count the compressed bytes as they reach the file, so the manifest's
sha256 and size never need a second read. Readers take the codec the manifest records
when the caller passes it; otherwise they detect it from the magic bytes, not from the
file name, so a renamed file still restores. Every reader checks that the stream really
ended (gzip's trailer, the end of the zstd frame): a truncated file is an
:class:`IntegrityError`, never a silently short read.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from moodump.errors import ConfigError, IntegrityError, StorageError
from moodump.formats import CODECS, Codec
from moodump.fsmodes import open_new

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


def get_codec(name: str, level: int | None = None) -> tuple[Codec, int]:
    """Validate a codec name and level; return the codec and the effective level."""
    codec = CODECS.get(name)
    if codec is None:
        raise ConfigError(
            f"unknown codec {name!r}", hint="use --codec gzip (default) or --codec zstd"
        )
    lvl = codec.default_level if level is None else level
    if not codec.min_level <= lvl <= codec.max_level:
        raise ConfigError(
            f"level {lvl} is out of range for {name} ({codec.min_level}..{codec.max_level})",
            hint=f"pick a --level between {codec.min_level} and {codec.max_level}"
            + (" (isal gzip levels; 1 is fast, 3 is smallest)" if name == "gzip" else ""),
        )
    return codec, lvl


class _HashingFile(io.RawIOBase):
    """A write-only file that hashes and counts what passes through to the real file."""

    def __init__(self, path: Path) -> None:
        self._fh = open_new(path)  # closed in close(); MOODUMP_FILE_MODE
        self.sha256 = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        mv = memoryview(b)
        self.sha256.update(mv)
        n = self._fh.write(mv)
        self.size += len(mv)
        return n

    def flush(self) -> None:
        if not self._fh.closed:
            self._fh.flush()

    def close(self) -> None:
        # No fsync per file: the dump syncs the whole directory once before it writes
        # the manifest (see sync_tree), which is far cheaper for hundreds of tables.
        # POSIX_FADV_DONTNEED starts the file's writeback now, without waiting, so that
        # final sync has little left to do, and tells the kernel the backup will not be
        # read again: it does not push the database's own pages out of the page cache.
        # The descriptor is closed even when the flush fails (disk full): a writer that is
        # thrown away must not keep its deleted file, and so the full disk, allocated.
        try:
            if not self._fh.closed:
                try:
                    self._fh.flush()
                    with contextlib.suppress(OSError, AttributeError):
                        os.posix_fadvise(self._fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    self._fh.close()
        finally:
            super().close()


_local = threading.local()


def _zstd_compressor(level: int) -> Any:
    """One zstd compressor per thread and level, reused file after file.

    A new compressor per file (hundreds of small Moodle tables) costs a context of several
    MB each time and fragments the allocator across threads (peak RSS 122 MB against 57 MB
    for gzip at 2 workers). Compression runs inline (threads=0): the dump already runs one
    writer per worker, and zstd's own threads allocate job buffers per writer.
    """
    import zstandard

    cache = getattr(_local, "zstd", None)
    if cache is None:
        cache = _local.zstd = {}
    if level not in cache:
        cache[level] = zstandard.ZstdCompressor(level=level, threads=0, write_checksum=True)
    return cache[level]


class DataWriter:
    """Compressing writer for one data file.

    ``write`` takes uncompressed bytes; ``close`` finishes the stream and returns
    (compressed size, sha256 of the compressed file). Errors (cannot create the file,
    disk full) surface as :class:`StorageError` naming the file. The one exception is
    :class:`FileExistsError`: the writer never replaces a file, and a caller that hands it
    an existing path has a bug to fix, not a storage problem to report.
    """

    def __init__(self, path: Path, codec: Codec, level: int, *, threaded: bool = True) -> None:
        """``threaded``: compress in a helper thread (big files) or inline (small files)."""
        self.path = path
        try:
            self._raw = _HashingFile(path)
        except FileExistsError:
            raise
        except OSError as exc:
            raise storage_error(exc, path) from exc
        self._stream: IO[bytes]
        try:
            if codec.name == "gzip":
                from isal import igzip, igzip_threaded

                if threaded:
                    self._stream = cast(
                        IO[bytes],
                        igzip_threaded.open(  # type: ignore[no-untyped-call]
                            self._raw, "wb", compresslevel=level, threads=1
                        ),
                    )
                else:
                    self._stream = cast(
                        IO[bytes],
                        igzip.IGzipFile(  # type: ignore[no-untyped-call]
                            fileobj=self._raw, mode="wb", compresslevel=level
                        ),
                    )
            elif codec.name == "zstd":
                cctx = _zstd_compressor(level)
                self._stream = cast(
                    IO[bytes], cctx.stream_writer(cast(IO[bytes], self._raw), closefd=False)
                )
            else:
                self._stream = cast(IO[bytes], self._raw)
        except OSError as exc:
            self._raw.close()
            raise storage_error(exc, path) from exc

    def write(self, data: bytes) -> None:
        try:
            self._stream.write(data)
        except OSError as exc:
            raise storage_error(exc, self.path) from exc

    def close(self) -> tuple[int, str]:
        try:
            try:
                self._stream.close()
            finally:
                if not self._raw.closed:
                    self._raw.close()
        except OSError as exc:
            raise storage_error(exc, self.path) from exc
        return self._raw.size, self._raw.sha256.hexdigest()

    def abort(self) -> None:
        """Close without caring about errors (the file is being thrown away)."""
        for closer in (self._stream.close, self._raw.close):
            with contextlib.suppress(Exception):
                closer()


def storage_error(exc: OSError, path: Path) -> StorageError:
    """A StorageError for a failed write: disk full gets its own message and next step."""
    import errno

    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StorageError(
            f"no space left writing {path} ({exc.strerror})",
            hint="free space on the backup volume or choose another --output; "
            "nothing was published and existing backups are untouched",
        )
    return StorageError(
        f"cannot write {path}: {exc.strerror or exc}", hint="check the output directory"
    )


_MAGICS = {"gzip": GZIP_MAGIC, "zstd": ZSTD_MAGIC}
_CORRUPT_HINT = "this backup cannot be restored; use another backup"


class _Truncated(EOFError):
    """The stored bytes end before their codec's stream does."""


class _Damaged(ValueError):
    """The stored bytes are not a stream of the codec they should be in."""


def _corrupt(shown: str, exc: BaseException) -> IntegrityError:
    return IntegrityError(f"{shown} is corrupt or truncated ({exc})", hint=_CORRUPT_HINT)


def _sniff(head: bytes) -> str:
    """Codec name from the first bytes of a data file (up to 4: all of them if shorter).

    A stream of 1 to 3 bytes that are the start of a magic is a compressed file cut
    inside its magic: an uncompressed data file is whole rows, each ending in a newline,
    so it never is a bare magic prefix. (Whether an uncompressed file *starting* with a
    magic is one cannot be told from its bytes: callers that know the codec pass it.)
    """
    for name, magic in _MAGICS.items():
        if head.startswith(magic):
            return name
    for name, magic in _MAGICS.items():
        if head and magic.startswith(head):
            raise _Truncated(f"it ends inside the {name} magic bytes")
    return "none"


def detect_codec(path: Path) -> str:
    """Codec name from the first bytes of a file (see :func:`_sniff`)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
    except FileNotFoundError as exc:
        raise IntegrityError(f"missing file {path}", hint="the backup is incomplete") from exc
    try:
        return _sniff(head)
    except _Truncated as exc:
        raise _corrupt(str(path), exc) from exc


class _Prefixed(io.RawIOBase):
    """A stream whose first bytes were already read (to check the codec), put back."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        try:
            self._rest.close()
        finally:
            super().close()


# Where _ZstdFrames is in the layout of a zstd stream (RFC 8878, section 3.1).
_MAGIC, _FRAME_HEADER, _BLOCK_HEADER, _SKIPPABLE_SIZE = range(4)
_ZSTD_MAGIC_NUMBER = 0xFD2FB528
_ZSTD_MAX_BLOCK = 128 << 10


class _ZstdFrames(_Prefixed):
    """The stored side of a zstd reader: passes the bytes on and follows the frame layout.

    zstandard's stream_reader ends quietly when its input ends inside a frame, so a
    truncated file, or one whose last block header claims more bytes than the file has,
    would read as short data with no error. This follows the layout (frame header, each
    block's header and size, the content checksum, skippable frames) with a few integer
    operations per block, never per byte, and raises at the end of the input unless the
    last frame ended exactly there. The decompressor still checks the content itself.
    """

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        super().__init__(head, rest)
        self._state = _MAGIC
        self._want = 4  # length of the header being collected
        self._part = b""  # its first bytes, when a read ended inside it
        self._skip = 0  # bytes still to pass before the next header
        self._checksum = False  # the current frame ends with a 4-byte checksum
        self._frames = 0  # complete zstd frames seen

    def readinto(self, buffer: Any) -> int:
        n = super().readinto(buffer)
        if n:
            self._follow(memoryview(buffer).cast("B")[:n])
        elif self._state != _MAGIC or self._part or self._skip or not self._frames:
            raise _Truncated("the zstd frame ends before its last block and checksum")
        return n

    def _follow(self, data: memoryview) -> None:
        pos, end = 0, len(data)
        while pos < end:
            if self._skip:
                step = min(self._skip, end - pos)
                self._skip -= step
                pos += step
                continue
            need = self._want - len(self._part)
            piece = bytes(data[pos : pos + need])
            pos += len(piece)
            if len(piece) < need:
                self._part += piece
                return
            header, self._part = self._part + piece, b""
            self._header(int.from_bytes(header, "little"))

    def _header(self, value: int) -> None:
        if self._state == _MAGIC:
            if value == _ZSTD_MAGIC_NUMBER:
                self._state, self._want = _FRAME_HEADER, 1
            elif value & 0xFFFFFFF0 == 0x184D2A50:
                self._state, self._want = _SKIPPABLE_SIZE, 4
            else:
                raise _Damaged("bytes after the end of a zstd frame are not another frame")
        elif self._state == _FRAME_HEADER:
            if value & 0x08:
                raise _Damaged("a zstd frame header has its reserved bit set")
            single = value >> 5 & 1
            self._checksum = bool(value & 0x04)
            # window descriptor, dictionary id, frame content size: skipped, not needed
            self._skip = (1 - single) + (0, 1, 2, 4)[value & 3] + (single, 2, 4, 8)[value >> 6]
            self._state, self._want = _BLOCK_HEADER, 3
        elif self._state == _BLOCK_HEADER:
            kind, size = value >> 1 & 3, value >> 3
            if kind == 3 or size > _ZSTD_MAX_BLOCK:
                raise _Damaged("a zstd block header is invalid")
            self._skip = 1 if kind == 1 else size  # an RLE block stores one byte
            if value & 1:  # the frame's last block
                self._skip += 4 if self._checksum else 0
                self._state, self._want = _MAGIC, 4
                self._frames += 1
        else:
            self._skip = value
            self._state, self._want = _MAGIC, 4


class _OwningReader(io.BufferedReader):
    """A buffered decompressor that also closes the stream it reads from.

    isal's reader never closes a file object it was given; without this the stored
    stream (a file, an off-site connection) stays open until garbage collection, and
    after a read error a cycle through the traceback delays even that.
    """

    def __init__(self, raw: io.RawIOBase, under: BinaryIO) -> None:
        super().__init__(raw)
        self._under = under

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._under.close()


def _read_head(fh: BinaryIO) -> bytes:
    """The first 4 bytes (fewer only at the end of the stream), however the stream trickles."""
    head = b""
    while len(head) < 4:
        more = fh.read(4 - len(head))
        if not more:
            break
        head += more
    return head


def _decoder(fh: BinaryIO, codec: str | None) -> BinaryIO:
    """The reader of uncompressed bytes over ``fh`` (see :func:`open_reader`)."""
    if codec == "none":
        return cast(BinaryIO, io.BufferedReader(_Prefixed(b"", fh), buffer_size=1 << 20))
    head = _read_head(fh)
    if codec is None:
        codec = _sniff(head)
    elif not head.startswith(_MAGICS[codec]):
        if _MAGICS[codec].startswith(head):
            raise _Truncated("it is empty" if not head else f"it ends inside the {codec} magic")
        raise _Damaged(f"it is not {codec} data, the codec its backup records")
    if codec == "zstd":
        import zstandard

        frames = io.BufferedReader(_ZstdFrames(head, fh), buffer_size=1 << 20)
        return cast(
            BinaryIO,
            zstandard.ZstdDecompressor().stream_reader(
                frames, closefd=True, read_across_frames=True
            ),
        )
    stream = cast(BinaryIO, io.BufferedReader(_Prefixed(head, fh), buffer_size=1 << 20))
    if codec == "gzip":
        from isal import igzip_threaded

        gz = igzip_threaded.open(stream, "rb", threads=1)  # type: ignore[no-untyped-call]
        return cast(BinaryIO, _OwningReader(gz.detach(), stream))
    return stream


def open_reader(
    src: Path | str | BinaryIO, codec: str | None = None, *, name: str | None = None
) -> BinaryIO:
    """Open a data file, or a stream of its stored bytes, for reading uncompressed bytes.

    ``codec`` is the codec the backup's manifest records; the bytes must be in it (a
    file of another codec, empty, or cut inside its magic is damaged). Without it the
    codec is sniffed from the first bytes, so a renamed file still reads; but an
    uncompressed file whose first row happens to start with a magic is then misread,
    so callers that know the codec should pass it. Either way nothing needs to seek: a
    stream from object storage or a decrypting reader works the same as a local path.

    The reader owns ``src`` and closes it when it is closed (or when opening fails).
    Damage found while opening raises :class:`IntegrityError` naming ``name`` (default:
    the path); damage found later surfaces from ``read`` as the codec's own error
    (EOFError, OSError, ValueError, isal's IsalError, zstandard's ZstdError), which
    :func:`iter_uncompressed` turns into IntegrityError.
    """
    shown = name or str(src)
    if codec is not None and codec not in CODECS:
        if not isinstance(src, (str, Path)):
            src.close()
        raise IntegrityError(
            f"{shown} is in codec {codec!r}, which this moodump cannot read",
            hint="read it with the moodump version that wrote the backup, or a newer one",
        )
    if isinstance(src, (str, Path)):
        try:
            fh: BinaryIO = open(src, "rb")  # noqa: SIM115 - owned by the reader
        except FileNotFoundError as exc:
            raise IntegrityError(f"missing file {src}", hint="the backup is incomplete") from exc
    else:
        fh = src
    try:
        return _decoder(fh, codec)
    except (_Truncated, _Damaged) as exc:
        fh.close()
        raise _corrupt(shown, exc) from exc
    except BaseException:
        fh.close()
        raise


def iter_uncompressed(
    src: Path | str | BinaryIO,
    block: int = 1 << 20,
    *,
    name: str | None = None,
    codec: str | None = None,
) -> Iterator[bytes]:
    """Yield the uncompressed content in blocks; truncation/corruption -> IntegrityError.

    ``src`` is a path or an open stream of the stored bytes (closed at the end, also
    after an error); ``name`` names it in errors when it is a stream; ``codec`` is the
    codec the manifest records (sniffed from the first bytes when not given; see
    :func:`open_reader`).
    """
    shown = name or str(src)
    with _read_errors(shown), open_reader(src, codec, name=shown) as fh:
        while True:
            data = fh.read(block)
            if not data:
                return
            yield data


def iter_line_blocks(
    src: Path | str | BinaryIO,
    block: int = 1 << 20,
    *,
    name: str | None = None,
    codec: str | None = None,
) -> Iterator[memoryview]:
    """Yield the uncompressed content in blocks of whole lines (each ends with LF; about
    ``block`` bytes, longer for a longer line), then what follows the last LF, if
    anything. The blocks are views of ONE buffer, read into with ``readinto`` and reused:
    a view is valid until the next one is asked for, and must be released (no other
    buffer may still use it) by then. Compared with :func:`iter_uncompressed`, no block
    is allocated or copied per read. Errors as for :func:`iter_uncompressed`.
    """
    shown = name or str(src)
    buf = bytearray(block)
    filled = 0  # bytes in buf; those after the last yielded LF are a row's beginning
    with _read_errors(shown), open_reader(src, codec, name=shown) as fh:
        while True:
            if filled == len(buf):  # a line longer than the buffer: double it
                buf.extend(bytes(len(buf)))
            with memoryview(buf) as view:
                n = cast(io.BufferedIOBase, fh).readinto(view[filled:])
            if not n:
                break
            cut = buf.rfind(b"\n", filled, filled + n)
            filled += n
            if cut < 0:
                continue
            with memoryview(buf) as view, view[: cut + 1] as lines:
                yield lines
            rest = filled - cut - 1
            buf[:rest] = buf[cut + 1 : filled]
            filled = rest
        if filled:
            with memoryview(buf) as view, view[:filled] as tail:
                yield tail


@contextlib.contextmanager
def _read_errors(shown: str) -> Iterator[None]:
    """Reading a data file: a missing file, a truncated stream or damaged data as the
    backup's IntegrityError naming the file (:func:`iter_uncompressed`,
    :func:`iter_line_blocks`)."""
    try:
        yield
    except (EOFError, OSError, ValueError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise IntegrityError(f"missing file {shown}", hint="the backup is incomplete") from exc
        raise _corrupt(shown, exc) from exc
    except Exception as exc:
        if _is_codec_error(exc):
            raise _corrupt(shown, exc) from exc
        raise


def _is_codec_error(exc: Exception) -> bool:
    """isal's IsalError and zstandard's ZstdError: damaged data, though not OSErrors."""
    import zstandard
    from isal import igzip_lib

    # isal's stub declares IsalError as an instance; it is the exception class
    isal_error = cast(type[Exception], igzip_lib.IsalError)
    return isinstance(exc, (isal_error, zstandard.ZstdError))


def sha256_file(path: Path) -> tuple[int, str]:
    """(size, sha256) of a file as stored."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while True:
            b = fh.read(1 << 20)
            if not b:
                break
            h.update(b)
            size += len(b)
    return size, h.hexdigest()


def sync_tree(root: Path) -> None:
    """Make every file below ``root`` durable: one syncfs(2) where Linux offers it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(root, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    for path in sorted(root.rglob("*")):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
