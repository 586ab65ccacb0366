"""Codecs of the data files (moodump.compression), tested directly on real files.

Every codec round-trips bytes exactly, through the writer the dump uses and the reader
restore and verify use; its output is readable by the stock tools; a damaged file raises
IntegrityError instead of yielding short data; a full disk is a StorageError.
"""

from __future__ import annotations

import errno
import functools
import gzip
import hashlib
import io
import os
import random
import shutil
import subprocess
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

from moodump.compression import (
    CODECS,
    DataWriter,
    detect_codec,
    get_codec,
    iter_line_blocks,
    iter_uncompressed,
    sha256_file,
    storage_error,
    sync_tree,
)
from moodump.errors import ConfigError, IntegrityError, StorageError

# --------------------------------------------------------------------------- payloads


@functools.cache
def _text(size: int, seed: int = 7) -> bytes:
    """Row-like text (TAB-separated words, one row per line): compressible, not trivially."""
    rnd = random.Random(seed)
    words = [
        bytes(rnd.choice(b"abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9)))
        for _ in range(3000)
    ]
    out = bytearray()
    i = 0
    while len(out) < size:
        out += b"%d\t" % i + b" ".join(rnd.choice(words) for _ in range(12)) + b"\n"
        i += 1
    return bytes(out[:size])


@functools.cache
def _noise(size: int, seed: int = 11) -> bytes:
    """Incompressible bytes (every byte value, NUL and LF included)."""
    return random.Random(seed).randbytes(size)


PAYLOADS = {
    "empty": b"",
    "one byte": b"\n",
    "small": b"1\tJos\xc3\xa9\t\\N\n2\t\xf0\x9f\x98\x80\tx\\ty\n",
    "multi-MB text": _text(6 << 20),
    "incompressible": _noise(4 << 20),
}
CODEC_NAMES = sorted(CODECS)  # gzip, none, zstd
COMPRESSED = ["gzip", "zstd"]


def _write(path: Path, data: bytes, codec: str, level: int | None = None, **kw) -> tuple[int, str]:
    """Write ``data`` through a DataWriter in dump-sized pieces; return close()'s result."""
    c, lvl = get_codec(codec, level)
    writer = DataWriter(path, c, lvl, **kw)
    for i in range(0, len(data), 1 << 20):
        writer.write(data[i : i + (1 << 20)])
    return writer.close()


def _read(path: Path, codec: str | None = None) -> bytes:
    """The file's content; ``codec`` as the manifest records it, or sniffed when None."""
    return b"".join(iter_uncompressed(path, codec=codec))


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "inline"])
@pytest.mark.parametrize("payload", list(PAYLOADS))
@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_every_codec_round_trips_exactly(tmp_path, codec, payload, threaded):
    data = PAYLOADS[payload]
    path = tmp_path / ("data.tsv" + CODECS[codec].extension)
    size, sha = _write(path, data, codec, threaded=threaded)
    # close() reports the file as stored, without a second read
    assert (size, sha) == sha256_file(path)
    assert size == path.stat().st_size
    assert detect_codec(path) == codec
    assert _read(path) == data
    assert _read(path, codec) == data


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_many_small_writes_equal_one_big_write(tmp_path, codec):
    """The dump writes row batches of any size; the content is their concatenation."""
    rnd = random.Random(3)
    data = _text(300_000)
    c, lvl = get_codec(codec)
    writer = DataWriter(tmp_path / "pieces", c, lvl)
    pos = 0
    while pos < len(data):
        n = rnd.choice([1, 2, 7, 100, 4096, 65536])
        writer.write(data[pos : pos + n])
        pos += n
    writer.close()
    assert _read(tmp_path / "pieces") == data


@settings(max_examples=60, deadline=None)
@given(
    codec=st.sampled_from(COMPRESSED),
    pieces=st.lists(st.binary(max_size=3000), max_size=8),
    threaded=st.booleans(),
)
def test_round_trip_property(tmp_path_factory, codec, pieces, threaded):
    path = tmp_path_factory.mktemp("prop") / "f"
    c, lvl = get_codec(codec)
    writer = DataWriter(path, c, lvl, threaded=threaded)
    for p in pieces:
        writer.write(p)
    size, sha = writer.close()
    assert _read(path) == b"".join(pieces)
    assert (size, sha) == sha256_file(path)


def test_reader_goes_by_magic_bytes_not_by_name(tmp_path):
    """A renamed file still restores: the codec comes from its first bytes."""
    data = _text(50_000)
    _write(tmp_path / "a.gz", data, "zstd")
    _write(tmp_path / "b.zst", data, "gzip")
    assert detect_codec(tmp_path / "a.gz") == "zstd"
    assert detect_codec(tmp_path / "b.zst") == "gzip"
    assert _read(tmp_path / "a.gz") == _read(tmp_path / "b.zst") == data


def test_reader_yields_blocks_of_the_requested_size(tmp_path):
    data = _text(300_000)
    _write(tmp_path / "f", data, "gzip")
    blocks = list(iter_uncompressed(tmp_path / "f", block=65536))
    assert b"".join(blocks) == data
    assert all(len(b) <= 65536 for b in blocks)


# --------------------------------------------------------------------------- streams


class _Trickle(io.RawIOBase):
    """A non-seekable stream that returns at most ``step`` bytes per read (a slow socket)."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self._step, len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_streams_read_like_files(tmp_path, codec):
    """Object storage and decryption hand the reader a stream, never a seekable file."""
    data = _text(20_000) + _noise(5_000)
    _write(tmp_path / "f", data, codec)
    raw = (tmp_path / "f").read_bytes()
    assert b"".join(iter_uncompressed(io.BytesIO(raw), name="data/t.tsv")) == data
    # the codec is sniffed even when the first bytes come one at a time
    assert b"".join(iter_uncompressed(_Trickle(raw, 1), name="data/t.tsv")) == data
    assert b"".join(iter_uncompressed(_Trickle(raw, 3), name="data/t.tsv")) == data
    # a pipe cannot seek at all
    r, w = os.pipe()
    feeder = threading.Thread(target=lambda: (os.write(w, raw), os.close(w)), daemon=True)
    feeder.start()
    with open(r, "rb", buffering=0) as pipe:
        assert b"".join(iter_uncompressed(pipe, name="data/t.tsv")) == data
    feeder.join()


@pytest.mark.parametrize("codec", COMPRESSED)
def test_damaged_stream_is_named_in_the_error(tmp_path, codec):
    data = _text(200_000)
    _write(tmp_path / "f", data, codec)
    raw = bytearray((tmp_path / "f").read_bytes())
    raw[len(raw) // 2] ^= 0x01
    with pytest.raises(IntegrityError) as err:
        b"".join(iter_uncompressed(io.BytesIO(raw), name="data/0001-mdl_user.00000.tsv.gz"))
    assert err.value.message.startswith("data/0001-mdl_user.00000.tsv.gz is corrupt")
    with pytest.raises(IntegrityError) as err:
        b"".join(iter_uncompressed(str(tmp_path / "missing.gz")))
    assert err.value.message == f"missing file {tmp_path / 'missing.gz'}"


def _close_cases() -> Iterator[object]:
    for codec in CODEC_NAMES:
        for how in ("read to the end", "stopped early", "damaged"):
            if codec == "none" and how == "damaged":
                continue  # nothing to detect without a codec
            yield pytest.param(codec, how, id=f"{codec}-{how}")


@pytest.mark.parametrize(("codec", "how"), list(_close_cases()))
def test_the_stream_is_closed_whatever_happens(tmp_path, codec, how):
    data = _text(300_000)
    _write(tmp_path / "f", data, codec)
    raw = bytearray((tmp_path / "f").read_bytes())
    if how == "damaged":
        raw[len(raw) // 2] ^= 0x01
    stream = io.BytesIO(bytes(raw))
    blocks = iter_uncompressed(stream, block=4096, name="f")
    if how == "stopped early":
        next(blocks)
        blocks.close()  # the restore gave up on this file
    elif how == "damaged":
        with pytest.raises(IntegrityError):
            b"".join(blocks)
    else:
        assert b"".join(blocks) == data
    assert stream.closed


@pytest.mark.parametrize(
    "data",
    [b"\x1f\x8b\x08 gzip bytes in a BLOB\t1\n", b"\x28\xb5\x2f\xfd zstd bytes in a BLOB\t1\n"],
    ids=["gzip magic", "zstd magic"],
)
def test_uncompressed_file_starting_with_a_magic_reads_back(tmp_path, data):
    """Read with the codec its manifest records: the bytes alone cannot tell."""
    _write(tmp_path / "f.tsv", data, "none")
    assert _read(tmp_path / "f.tsv", "none") == data
    assert b"".join(iter_uncompressed(io.BytesIO(data), name="f.tsv", codec="none")) == data


@pytest.mark.parametrize(
    ("stored", "codec", "why"),
    [
        ("zstd", "gzip", "not gzip data"),
        ("gzip", "zstd", "not zstd data"),
        ("none", "gzip", "not gzip data"),
        ("empty", "zstd", "it is empty"),
        ("empty", "gzip", "it is empty"),
    ],
)
def test_a_file_not_in_the_recorded_codec_is_damaged(tmp_path, stored, codec, why):
    path = tmp_path / "f"
    if stored == "empty":
        path.write_bytes(b"")
    else:
        _write(path, _text(10_000), stored)
    with pytest.raises(IntegrityError) as err:
        _read(path, codec)
    assert err.value.message.startswith(f"{path} is corrupt or truncated") and why in str(err.value)
    stream = io.BytesIO(path.read_bytes())
    with pytest.raises(IntegrityError):
        b"".join(iter_uncompressed(stream, name="f", codec=codec))
    assert stream.closed  # also when the reader could not even start


def test_a_codec_this_version_does_not_know_is_refused(tmp_path):
    stream = io.BytesIO(b"whatever")
    with pytest.raises(IntegrityError) as err:
        b"".join(iter_uncompressed(stream, name="data/t.tsv.lz4", codec="lz4"))
    assert "'lz4'" in err.value.message and "newer" in (err.value.hint or "")
    assert stream.closed


def test_an_empty_file_of_unknown_codec_is_empty_content(tmp_path):
    (tmp_path / "f").write_bytes(b"")
    assert _read(tmp_path / "f") == b""
    assert detect_codec(tmp_path / "f") == "none"


@pytest.mark.parametrize("cut", [b"\x1f", b"\x28", b"\x28\xb5", b"\x28\xb5\x2f"])
def test_a_file_cut_inside_a_magic_is_truncated_for_detect_codec_too(tmp_path, cut):
    (tmp_path / "f").write_bytes(cut)
    with pytest.raises(IntegrityError, match="corrupt or truncated"):
        detect_codec(tmp_path / "f")


def _zstd_frame(data: bytes) -> bytes:
    out = io.BytesIO()
    with zstandard.ZstdCompressor(write_checksum=True).stream_writer(out, closefd=False) as w:
        w.write(data)
    return out.getvalue()


def test_zstd_reads_every_frame_and_refuses_bytes_after_the_last(tmp_path):
    """Like the zstd command: concatenated (and skippable) frames are one stream."""
    a, b = _text(300_000, seed=1), _text(200_000, seed=2)
    skippable = (0x184D2A53).to_bytes(4, "little") + (5).to_bytes(4, "little") + b"12345"
    path = tmp_path / "f.zst"
    path.write_bytes(_zstd_frame(a) + skippable + _zstd_frame(b))
    assert _read(path) == _read(path, "zstd") == a + b
    # one-shot frames (with content size, without a checksum) follow the layout as well
    path.write_bytes(zstandard.ZstdCompressor(write_checksum=False).compress(a))
    assert _read(path, "zstd") == a
    for tail in (b"garbage!", b"\x28\xb5"):
        path.write_bytes(_zstd_frame(a) + tail)
        with pytest.raises(IntegrityError, match="corrupt or truncated"):
            _read(path, "zstd")


# --------------------------------------------------------------------------- stock tools


def test_gzip_output_reads_with_python_gzip_and_gzip_tools(tmp_path):
    data = _text(3 << 20)
    for threaded in (True, False):
        path = tmp_path / f"t{threaded}.tsv.gz"
        _write(path, data, "gzip", threaded=threaded)
        assert gzip.decompress(path.read_bytes()) == data
        assert subprocess.run(["gzip", "-t", str(path)], capture_output=True).returncode == 0
        assert subprocess.run(["zcat", str(path)], capture_output=True, check=True).stdout == data


def test_zstd_output_reads_with_zstandard_and_carries_a_checksum(tmp_path):
    data = _text(3 << 20)
    path = tmp_path / "t.tsv.zst"
    _write(path, data, "zstd")
    raw = path.read_bytes()
    assert zstandard.get_frame_parameters(raw).has_checksum
    with zstandard.ZstdDecompressor().stream_reader(raw) as reader:
        assert reader.read() == data


@pytest.mark.skipif(shutil.which("zstd") is None, reason="the zstd command is not installed")
def test_zstd_output_reads_with_the_zstd_command(tmp_path):
    data = _text(1 << 20)
    path = tmp_path / "t.tsv.zst"
    _write(path, data, "zstd")
    assert subprocess.run(["zstd", "-t", "-q", str(path)], capture_output=True).returncode == 0
    out = subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
    assert out == data


# --------------------------------------------------------------------------- codecs and levels


def test_get_codec_defaults():
    assert get_codec("gzip") == (CODECS["gzip"], 1)
    assert get_codec("zstd") == (CODECS["zstd"], 3)
    assert get_codec("none") == (CODECS["none"], 0)
    assert [CODECS[n].extension for n in ("gzip", "zstd", "none")] == [".gz", ".zst", ""]


@pytest.mark.parametrize(
    ("name", "level"),
    [("gzip", -1), ("gzip", 4), ("zstd", 0), ("zstd", 20), ("none", 1), ("brotli", None)],
)
def test_get_codec_refuses_unknown_codecs_and_levels(name, level):
    with pytest.raises(ConfigError) as err:
        get_codec(name, level)
    assert err.value.hint and err.value.exit_code == 2
    if name in CODECS:
        c = CODECS[name]
        assert f"{c.min_level}..{c.max_level}" in err.value.message


@pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "inline"])
@pytest.mark.parametrize("codec", COMPRESSED)
def test_levels_are_honoured(tmp_path, codec, threaded):
    """A higher level gives a smaller file of the same content."""
    data = _text(1 << 20)  # enough for every level to differ; level 19 is slow on more
    c = CODECS[codec]
    levels = range(c.min_level, c.max_level + 1) if codec == "gzip" else (1, 3, 9, 19)
    sizes = []
    for lvl in levels:
        path = tmp_path / f"l{lvl}"
        sizes.append(_write(path, data, codec, lvl, threaded=threaded)[0])
        assert _read(path) == data
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == len(sizes), sizes


# --------------------------------------------------------------------------- damaged files


# Where a truncated file ends, as a function of its full length. "trailer" drops gzip's
# ISIZE and zstd's content checksum.
CUTS = {
    "half": lambda n: n // 2,
    "last byte": lambda n: n - 1,
    "trailer": lambda n: n - 4,
    "inside magic": lambda n: 1,
}


@pytest.mark.parametrize("known", [False, True], ids=["sniffed", "codec given"])
@pytest.mark.parametrize("how", list(CUTS))
@pytest.mark.parametrize("codec", COMPRESSED)
def test_truncated_file_raises_integrity_error(tmp_path, codec, how, known):
    data = _text(2 << 20)
    path = tmp_path / "f"
    _write(path, data, codec)
    raw = path.read_bytes()
    path.write_bytes(raw[: CUTS[how](len(raw))])
    with pytest.raises(IntegrityError) as err:
        _read(path, codec if known else None)  # never a silently short read
    assert "corrupt or truncated" in err.value.message and err.value.exit_code == 8
    assert err.value.message.startswith(str(path))


# Positions of a flipped bit, from the end of the compressed file. -2 is in gzip's ISIZE
# and zstd's content checksum; -6 in gzip's CRC-32 and in the header of the empty last
# block that ends every zstd frame moodump writes.
FLIPS = {"middle": lambda n: n // 2, "last bytes": lambda n: n - 2, "end of data": lambda n: n - 6}


@pytest.mark.parametrize("where", list(FLIPS))
@pytest.mark.parametrize("threaded", ["threaded", "inline"])
@pytest.mark.parametrize("codec", COMPRESSED)
def test_corrupted_file_raises_integrity_error(tmp_path, codec, threaded, where):
    data = _text(2 << 20)
    path = tmp_path / "f"
    _write(path, data, codec, threaded=threaded == "threaded")
    raw = bytearray(path.read_bytes())
    raw[FLIPS[where](len(raw))] ^= 0x01
    path.write_bytes(raw)
    with pytest.raises(IntegrityError) as err:
        _read(path)
    assert "corrupt or truncated" in err.value.message
    assert "use another backup" in (err.value.hint or "")


def test_invalid_deflate_block_raises_integrity_error(tmp_path):
    path = tmp_path / "f.gz"
    # gzip header, then a final block of the reserved type 11 (invalid in every inflater)
    path.write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\x07" + bytes(16))
    with pytest.raises(zlib.error):
        gzip.decompress(path.read_bytes())  # the file is really invalid
    with pytest.raises(IntegrityError):
        _read(path)


def test_uncompressed_damage_is_found_by_the_recorded_sha256(tmp_path):
    """Codec 'none' has no checksum of its own: the manifest's sha256 is what catches it."""
    data = _text(100_000)
    path = tmp_path / "f.tsv"
    size, sha = _write(path, data, "none")
    raw = bytearray(path.read_bytes())
    raw[1000] ^= 0x01
    path.write_bytes(raw)
    assert sha256_file(path)[0] == size
    assert sha256_file(path)[1] != sha


def test_missing_file_raises_integrity_error(tmp_path):
    for call in (lambda: detect_codec(tmp_path / "gone"), lambda: _read(tmp_path / "gone")):
        with pytest.raises(IntegrityError) as err:
            call()
        assert "missing file" in err.value.message and "incomplete" in (err.value.hint or "")


# --------------------------------------------------------------------------- sha256_file, sync_tree


def test_sha256_file_of_a_plain_file(tmp_path):
    data = _noise(3 << 20) + b"tail"
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == (len(data), hashlib.sha256(data).hexdigest())
    (tmp_path / "empty").write_bytes(b"")
    assert sha256_file(tmp_path / "empty") == (0, hashlib.sha256(b"").hexdigest())


def test_sync_tree_leaves_every_file_intact(tmp_path):
    root = tmp_path / "backup"
    (root / "data").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    files = {root / "manifest.json": b"{}", root / "data" / "t.tsv": b"1\t2\n"}
    _write(root / "data" / "t.tsv.gz", _text(200_000), "gzip")
    for p, b in files.items():
        p.write_bytes(b)
    before = {p: sha256_file(p) for p in root.rglob("*") if p.is_file()}
    sync_tree(root)
    assert {p: sha256_file(p) for p in root.rglob("*") if p.is_file()} == before


# --------------------------------------------------------------------------- write errors


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT, errno.EFBIG])
def test_storage_error_says_disk_full_and_what_to_do(tmp_path, code):
    path = tmp_path / "data" / "t.tsv.gz"
    err = storage_error(OSError(code, os.strerror(code)), path)
    assert isinstance(err, StorageError) and err.exit_code == 7
    assert err.message.startswith(f"no space left writing {path}")
    assert "free space" in (err.hint or "") and "nothing was published" in (err.hint or "")


def test_storage_error_for_other_failures_names_the_file(tmp_path):
    path = tmp_path / "t.tsv.gz"
    err = storage_error(PermissionError(errno.EACCES, "Permission denied"), path)
    assert err.message == f"cannot write {path}: Permission denied"
    assert err.hint == "check the output directory"
    assert str(path) in storage_error(OSError("no errno at all"), path).message


@pytest.fixture()
def small_tmpfs(tmp_path) -> Iterator[Path]:
    """A 256 KiB tmpfs: a real full disk (needs root and CAP_SYS_ADMIN)."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    res = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        # lazy: a file a test left open must not turn the teardown into an error
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def _fill(path: Path, codec: str, threaded: bool) -> tuple[DataWriter, StorageError]:
    """Write 1 MiB of noise into the 256 KiB tmpfs; return the writer and its error."""
    c, lvl = get_codec(codec)
    writer = DataWriter(path, c, lvl, threaded=threaded)
    noise = _noise(1 << 20)
    try:
        for i in range(0, len(noise), 64 * 1024):
            writer.write(noise[i : i + 64 * 1024])
        writer.close()  # the threaded gzip writer only notices here
    except StorageError as exc:
        return writer, exc
    pytest.fail("1 MiB of noise fitted into a 256 KiB tmpfs")


@pytest.mark.parametrize("threaded", [True, False], ids=["threaded", "inline"])
@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_full_disk_is_a_storage_error(small_tmpfs, codec, threaded):
    path = small_tmpfs / "t.tsv"
    writer, err = _fill(path, codec, threaded)
    writer.abort()  # throwing the file away never raises
    path.unlink()
    assert err.message.startswith(f"no space left writing {path}")
    assert err.exit_code == 7 and "free space" in (err.hint or "")


def _open_fds(path: Path) -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(path)):
                out.append(fd)
        except OSError:
            pass
    return out


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd")
@pytest.mark.parametrize("threaded", ["threaded", "inline"])
@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_abort_after_a_full_disk_releases_the_file(small_tmpfs, codec, threaded):
    path = small_tmpfs / "t.tsv"
    writer, _ = _fill(path, codec, threaded == "threaded")
    writer.abort()
    path.unlink()
    assert _open_fds(path) == []
    assert shutil.disk_usage(small_tmpfs).used < 64 * 1024  # the space is free again


def test_writer_never_overwrites_an_existing_file(tmp_path):
    (tmp_path / "f").write_bytes(b"old")
    c, lvl = get_codec("gzip")
    with pytest.raises(FileExistsError):
        DataWriter(tmp_path / "f", c, lvl)
    assert (tmp_path / "f").read_bytes() == b"old"


def test_writer_that_cannot_create_its_file_raises_storage_error(tmp_path):
    c, lvl = get_codec("gzip")
    with pytest.raises(StorageError) as err:
        DataWriter(tmp_path / "no-such-dir" / "t.tsv.gz", c, lvl)
    assert "no-such-dir" in err.value.message


def test_line_blocks_are_whole_lines_of_one_reused_buffer():
    text = b"a\tb\n" * 300 + b"x" * 5000 + b"\n" + b"c\n" * 10 + b"tail"
    for codec, data in (("none", text), ("gzip", gzip.compress(text))):
        blocks = [bytes(b) for b in iter_line_blocks(io.BytesIO(data), 1024, codec=codec)]
        assert b"".join(blocks) == text
        assert all(b.endswith(b"\n") for b in blocks[:-1]) and blocks[-1].endswith(b"tail")
        assert any(len(b) > 5000 for b in blocks)  # a longer line makes a longer block
