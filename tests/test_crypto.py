"""Encryption to public keys (moodump.crypto): real age through pyrage, no mocks.

Keys are made here: age keys with pyrage, OpenSSH keys with ``cryptography`` (no
ssh-keygen needed). Backups are built with the manifest and compression modules, and
one test encrypts a real dump from the test rig's MariaDB.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import re
import shutil
import subprocess
import threading
import tracemalloc
from pathlib import Path

import pyrage
import pytest
import zstandard
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from isal import igzip
from pyrage import x25519

from moodump.compression import DataWriter, get_codec, sha256_file
from moodump.crypto import (
    ENCRYPTED_MANIFEST_NAME,
    INNER_MANIFEST_NAME,
    EncryptedManifest,
    HashingReader,
    check_identities,
    decrypt_backup_dir,
    decrypt_file,
    encrypt_backup_dir,
    encrypt_file,
    is_encrypted_backup,
    load_identities,
    open_backup_file,
    open_decrypting,
    open_encrypting,
    open_encrypting_reader,
    parse_recipients,
    read_encrypted_manifest,
    verify_ciphertext,
)
from moodump.errors import ConfigError, DecryptionError, IntegrityError, MoodumpError, StorageError
from moodump.logs import redact
from moodump.manifest import (
    MANIFEST_NAME,
    STATUS_DONE,
    STATUS_FAILED,
    Chunk,
    FileEntry,
    Manifest,
    TableEntry,
    read_done_manifest,
)

CHUNK = 64 * 1024  # age's STREAM chunk
MARKER = b"SECRET-MARKER-7f3a9c-student-grade"


# --- keys ------------------------------------------------------------------------


class AgeKey:
    """An age key pair on disk, in age-keygen's file layout."""

    def __init__(self, directory: Path, name: str = "key") -> None:
        native = x25519.Identity.generate()
        self.secret = str(native)
        self.public = str(native.to_public())
        self.path = directory / f"{name}.txt"
        self.path.write_text(
            f"# created: 2026-11-24T01:00:00Z\n# public key: {self.public}\n{self.secret}\n"
        )

    @property
    def identities(self):
        return load_identities(self.path)


def ssh_key(directory: Path, kind: str, name: str):
    """(private key path, public key line with a comment) of a new OpenSSH key."""
    key = (
        ed25519.Ed25519PrivateKey.generate()
        if kind == "ed25519"
        else rsa.generate_private_key(65537, 2048)
    )
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    path = directory / name
    path.write_bytes(private)
    return path, f"{public} ops@example.org"


@pytest.fixture()
def key(tmp_path: Path) -> AgeKey:
    return AgeKey(tmp_path, "main")


def test_parse_recipients_separators_and_duplicates(tmp_path):
    a, b, c = (AgeKey(tmp_path, n).public for n in "abc")
    text = f"{a}, {b}\n\n {c} {a}\n"
    assert [r.key for r in parse_recipients(text)] == [a, b, c]
    assert all(r.kind == "X25519" and r.label == r.key for r in parse_recipients(a))


def test_parse_recipients_ssh_keys_drop_their_comment(tmp_path):
    a = AgeKey(tmp_path).public
    _, ed = ssh_key(tmp_path, "ed25519", "ed")
    _, rs = ssh_key(tmp_path, "rsa", "rsa")
    recipients = parse_recipients(f"{ed}\n{a}, {rs}")
    assert [r.kind for r in recipients] == ["ssh-ed25519", "X25519", "ssh-rsa"]
    assert recipients[0].key == " ".join(ed.split()[:2])
    assert all("ops@example.org" not in r.key for r in recipients)
    assert recipients[0].label.startswith("ssh-ed25519 SHA256:")


def test_recipients_file_with_comments(tmp_path):
    a, b = AgeKey(tmp_path, "a").public, AgeKey(tmp_path, "b").public
    _, ed = ssh_key(tmp_path, "ed25519", "ed")
    path = tmp_path / "recipients.txt"
    path.write_text(f"# backup keys\n{a}\n\n# the ops laptop\n{ed}\n   # indented comment\n{b}\n")
    expected = [a, " ".join(ed.split()[:2]), b]
    assert [r.key for r in parse_recipients(str(path))] == expected
    assert [r.key for r in parse_recipients(path)] == expected


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("age1notakey", "age1notakey"),
        ("hello", "hello"),
        ("", "names no recipient"),
        ("  # only a comment", "names no recipient"),
        (
            "/nonexistent/recipients.txt",
            "recipients file /nonexistent/recipients.txt does not exist",
        ),
        ("ecdsa-sha2-nistp256 AAAAE2VjZHNh", "not a public key"),
        ("ssh-dss AAAAB3NzaC1kc3M", "ssh-dss is not supported"),
        ("ssh-ed25519 AAAAnotbase64", "not a valid public key"),
    ],
)
def test_bad_recipients_name_the_entry(value, names):
    with pytest.raises(ConfigError) as info:
        parse_recipients(value)
    assert names in info.value.message
    assert "age1" in str(info.value)  # the hint says what a good key looks like


def test_bad_recipient_names_which_entry(tmp_path):
    a = AgeKey(tmp_path).public
    with pytest.raises(ConfigError, match=r"entry 2 is not a valid public key: 'age1xyz'"):
        parse_recipients(f"{a}, age1xyz")


def test_ssh_key_mixed_into_a_line_is_refused(tmp_path):
    a = AgeKey(tmp_path).public
    _, ed = ssh_key(tmp_path, "ed25519", "ed")
    with pytest.raises(ConfigError, match="own line"):
        parse_recipients(f"{a} {ed}")


def test_private_key_given_as_recipient_is_not_echoed(key):
    with pytest.raises(ConfigError) as info:
        parse_recipients(f"{key.public}, {key.secret}")
    assert key.secret not in str(info.value)
    assert "private key" in info.value.message
    assert redact(f"oops {key.secret}") == "oops ***"


def test_private_ssh_key_block_as_recipient(tmp_path):
    path, _ = ssh_key(tmp_path, "ed25519", "ed")
    with pytest.raises(ConfigError, match="private key block"):
        parse_recipients(path)


def test_load_identities_age_file_with_several_keys(tmp_path):
    a, b = AgeKey(tmp_path, "a"), AgeKey(tmp_path, "b")
    both = tmp_path / "both.txt"
    both.write_text(a.path.read_text() + "\n" + b.path.read_text())
    ids = load_identities(both)
    assert [i.public for i in ids] == [a.public, b.public]
    assert [i.public for i in load_identities([a.path, str(b.path)])] == [a.public, b.public]


def test_identity_secret_is_never_shown(key):
    (ident,) = key.identities
    for text in (repr(ident), str(ident), ident.label):
        assert key.secret not in text
        assert key.public in text
    assert redact(f"key={key.secret}") == "key=***"
    with pytest.raises(TypeError):
        pickle.dumps(ident)
    assert not hasattr(ident, "__dict__")


def test_load_ssh_identities(tmp_path):
    for kind in ("ed25519", "rsa"):
        path, public = ssh_key(tmp_path, kind, kind)
        (ident,) = load_identities(path)
        assert ident.public == " ".join(public.split()[:2])
        assert ident.label.startswith(f"ssh-{kind} SHA256:")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no key"),
        ("# only comments\n", "holds no key"),
        ("age1qqqq\n", "line 1: a public key"),
        ("# c\nhello\n", "line 2: not an age identity"),
        ("AGE-SECRET-KEY-1NOTVALID\n", "line 1: not a valid age identity"),
    ],
)
def test_bad_identity_files(tmp_path, content, message):
    path = tmp_path / "id.txt"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as info:
        load_identities(path)
    assert "AGE-SECRET-KEY-1NOTVALID" not in str(info.value)


def test_key_files_saved_by_a_windows_editor_bom_and_crlf(tmp_path):
    """Notepad saves UTF-8 with a byte order mark and CRLF line ends: the keys in such
    recipient and identity files are the same keys (age itself reads them)."""
    a, b = AgeKey(tmp_path, "a"), AgeKey(tmp_path, "b")
    recipients = tmp_path / "recipients.txt"
    recipients.write_bytes(
        b"\xef\xbb\xbf# backup keys\r\n" + f"{a.public}\r\n{b.public}\r\n".encode()
    )
    assert [r.key for r in parse_recipients(str(recipients))] == [a.public, b.public]
    for first in (a.path.read_text().splitlines()[0], a.secret):  # a comment, or the key
        rest = [ln for ln in a.path.read_text().splitlines() if ln != first]
        identity = tmp_path / "identity.txt"
        identity.write_bytes(b"\xef\xbb\xbf" + "\r\n".join([first, *rest, ""]).encode())
        assert [i.public for i in load_identities(identity)] == [a.public]
        assert redact(f"key={a.secret}") == "key=***"


def test_an_ssh_key_comment_with_a_comma_is_still_a_comment(tmp_path):
    """``ssh-keygen -C "Jane Doe, ops"``: the comment is free text after the key, as
    ``authorized_keys`` reads it; a comma in it started a new (invalid) entry."""
    a = AgeKey(tmp_path).public
    _, ed = ssh_key(tmp_path, "ed25519", "ed")
    key = " ".join(ed.split()[:2])
    path = tmp_path / "recipients.txt"
    path.write_text(f"{key} Jane Doe, ops team\n{a}\n")
    assert [r.key for r in parse_recipients(str(path))] == [key, a]
    assert [r.key for r in parse_recipients(f"{key} Jane Doe, ops, {a}")] == [key, a]
    assert [r.key for r in parse_recipients(f"{a}, {key} jane, {a}")] == [a, key]


def test_missing_identity_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read identity file"):
        load_identities(tmp_path / "nope.txt")
    with pytest.raises(ConfigError, match="no identity file"):
        load_identities([])


def test_passphrase_protected_ssh_key_is_refused_with_a_way_out(tmp_path):
    if shutil.which("ssh-keygen") is None:  # cryptography would need bcrypt to write one
        pytest.skip("ssh-keygen is not installed")
    path = tmp_path / "locked"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "pw", "-f", str(path)], check=True)
    with pytest.raises(ConfigError, match="passphrase"):
        load_identities(path)


# --- streams ---------------------------------------------------------------------

SIZES = [0, 1, 1000, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17, 3 << 20]


def payload(size: int) -> bytes:
    seed = os.urandom(4096) + MARKER
    return (seed * (size // len(seed) + 1))[:size]


def rb(path: Path | str):
    """A file the caller hands over (open_decrypting closes its source)."""
    return open(path, "rb")


def wb(path: Path | str, **kw):
    return open(path, "wb", **kw)


def drain(reader, piece: int = 1 << 20) -> bytes:
    out = bytearray()
    while True:
        block = reader.read(piece)
        if not block:
            return bytes(out)
        out += block


@pytest.mark.parametrize("size", SIZES)
def test_file_round_trip(tmp_path, key, size):
    data = payload(size)
    (tmp_path / "plain").write_bytes(data)
    d = encrypt_file(tmp_path / "plain", tmp_path / "c.age", parse_recipients(key.public))
    ciphertext = (tmp_path / "c.age").read_bytes()
    assert ciphertext.startswith(b"age-encryption.org/v1\n")
    assert (d.plain_bytes, d.plain_sha256) == (size, hashlib.sha256(data).hexdigest())
    assert (d.cipher_bytes, d.cipher_sha256) == sha256_file(tmp_path / "c.age")
    # a standard age file: pyrage (as age -d would) decrypts it
    assert pyrage.decrypt(ciphertext, [x25519.Identity.from_str(key.secret)]) == data
    d2 = decrypt_file(tmp_path / "c.age", tmp_path / "back", key.identities)
    assert (tmp_path / "back").read_bytes() == data
    assert (d2.plain_sha256, d2.cipher_sha256) == (d.plain_sha256, d.cipher_sha256)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back", "c.age", "main.txt", "plain"]


@pytest.mark.parametrize("size", SIZES)
def test_stream_round_trip(key, size):
    data = payload(size)
    buf = io.BytesIO()
    with open_encrypting(buf, parse_recipients(key.public), closefd=False) as w:
        for start in range(0, size, 7000):  # writes that straddle chunk boundaries
            w.write(data[start : start + 7000])
    reader = open_decrypting(io.BytesIO(buf.getvalue()), key.identities)
    assert drain(reader, 4096) == data
    assert reader.read(10) == b""
    reader.close()
    # readinto, and the encrypting reader as the source
    enc = open_encrypting_reader(io.BytesIO(data), parse_recipients(key.public))
    reader = open_decrypting(enc, key.identities)
    out = bytearray()
    buf2 = bytearray(CHUNK + 5)
    while n := reader.readinto(buf2):
        out += buf2[:n]
    assert bytes(out) == data
    reader.close()


def test_every_recipient_can_decrypt(tmp_path):
    a, b = AgeKey(tmp_path, "a"), AgeKey(tmp_path, "b")
    ed_path, ed_pub = ssh_key(tmp_path, "ed25519", "ed")
    rsa_path, rsa_pub = ssh_key(tmp_path, "rsa", "rsa")
    recipients = parse_recipients(f"{a.public}, {b.public}\n{ed_pub}\n{rsa_pub}")
    data = payload(200_000)
    (tmp_path / "plain").write_bytes(data)
    encrypt_file(tmp_path / "plain", tmp_path / "c.age", recipients)
    for identity_file in (a.path, b.path, ed_path, rsa_path):
        with open_decrypting(rb(tmp_path / "c.age"), load_identities(identity_file)) as r:
            assert drain(r) == data


def test_wrong_or_missing_identity(tmp_path, key):
    (tmp_path / "plain").write_bytes(b"x" * 1000)
    encrypt_file(tmp_path / "plain", tmp_path / "c.age", parse_recipients(key.public))
    other = AgeKey(tmp_path, "other")
    with pytest.raises(DecryptionError, match="no identity given can decrypt") as info:
        open_decrypting(rb(tmp_path / "c.age"), other.identities)
    assert info.value.exit_code == 13
    with pytest.raises(DecryptionError, match="no identity was given"):
        open_decrypting(rb(tmp_path / "c.age"), [])
    with pytest.raises(DecryptionError):
        decrypt_file(tmp_path / "c.age", tmp_path / "out", other.identities)
    assert not (tmp_path / "out").exists()


def damaged_variants(ciphertext: bytes, header_len: int) -> dict[str, bytes]:
    """Truncations and bit flips at places age must notice (``header_len``: up to the payload)."""
    body = len(ciphertext) - header_len
    variants = {
        "empty": b"",
        "header only": ciphertext[:header_len],
        "half header": ciphertext[: header_len // 2],
        "last byte cut": ciphertext[:-1],
        "cut at a chunk boundary": ciphertext[: header_len + (CHUNK + 16)],
        "cut inside a chunk": ciphertext[: header_len + body // 2],
        "extra byte": ciphertext + b"\0",
    }
    mac_line = ciphertext.index(b"\n--- ") + 6
    for label, pos in (
        ("flip in header MAC", mac_line + 10),
        ("flip in payload nonce", header_len - 5),
        ("flip in first chunk", header_len + 100),
        ("flip in middle chunk", header_len + body // 2),
        ("flip in last tag", len(ciphertext) - 3),
    ):
        b = bytearray(ciphertext)
        b[pos] ^= 0x01
        variants[label] = bytes(b)
    return variants


def test_truncated_or_flipped_ciphertext_is_an_integrity_error(tmp_path, key):
    data = payload(5 * CHUNK + 123)
    ciphertext = pyrage.encrypt(data, [x25519.Recipient.from_str(key.public)])
    # the header ends with its "--- MAC" line; the payload starts with a 16-byte nonce
    header_len = ciphertext.index(b"\n", ciphertext.index(b"\n--- ") + 1) + 1 + 16
    for label, damaged in damaged_variants(ciphertext, header_len).items():
        got = bytearray()
        with pytest.raises(IntegrityError, match=r"bad\.age") as info:
            reader = open_decrypting(io.BytesIO(damaged), key.identities, name="bad.age")
            while block := reader.read(CHUNK):
                got += block
        assert info.value.exit_code == 8, label
        assert data.startswith(bytes(got)), label  # only authentic plaintext came out
        path = tmp_path / "bad.age"
        path.write_bytes(damaged)
        with pytest.raises(IntegrityError, match=r"bad\.age"):
            decrypt_file(path, tmp_path / "out", key.identities)
        assert not (tmp_path / "out").exists(), label


def test_no_plaintext_marker_in_ciphertext(tmp_path, key):
    data = MARKER * 50_000
    (tmp_path / "plain").write_bytes(data)
    encrypt_file(tmp_path / "plain", tmp_path / "c.age", parse_recipients(key.public))
    buf = io.BytesIO()
    with open_encrypting(buf, parse_recipients(key.public), closefd=False) as w:
        w.write(data)
    for ciphertext in ((tmp_path / "c.age").read_bytes(), buf.getvalue()):
        assert MARKER not in ciphertext
        assert MARKER[:12] not in ciphertext


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_decompression_sits_on_top_of_decryption(tmp_path, key, codec):
    rows = b"".join(b"%d\tuser%d\t%s\n" % (i, i, MARKER) for i in range(60_000))
    c, level = get_codec(codec)
    w = DataWriter(tmp_path / "t.tsv", c, level)
    w.write(rows)
    size, sha = w.close()
    encrypt_file(tmp_path / "t.tsv", tmp_path / "t.age", parse_recipients(key.public))
    plain = HashingReader(
        open_decrypting(rb(tmp_path / "t.age"), key.identities), sha256=sha, size=size
    )
    if codec == "gzip":
        stream = igzip.IGzipFile(fileobj=plain, mode="rb")
    else:
        stream = zstandard.ZstdDecompressor().stream_reader(plain)
    assert drain(stream, 65536) == rows
    assert plain.finish() == (size, sha)
    stream.close()


class FailingSource(io.RawIOBase):
    """A source (network stream) that fails after ``good`` bytes."""

    def __init__(self, data: bytes, good: int) -> None:
        self._data, self._pos, self._good = data, 0, good

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        if self._pos >= self._good:
            raise StorageError("connection reset by the object store", hint="retry")
        n = min(len(b), self._good - self._pos)
        b[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def test_source_errors_reach_the_reader_unchanged(key):
    ciphertext = pyrage.encrypt(payload(10 * CHUNK), [x25519.Recipient.from_str(key.public)])
    reader = open_decrypting(
        io.BufferedReader(FailingSource(ciphertext, 4 * CHUNK)), key.identities
    )
    with pytest.raises(StorageError, match="connection reset"):
        drain(reader, 8192)


def test_closing_early_stops_the_worker(key):
    ciphertext = pyrage.encrypt(payload(40 * CHUNK), [x25519.Recipient.from_str(key.public)])
    src = io.BytesIO(ciphertext)
    reader = open_decrypting(src, key.identities, name="early.age", capacity=CHUNK)
    assert reader.read(10)
    (worker,) = [t for t in threading.enumerate() if t.name == "moodump-age early.age"]
    reader.close()
    assert src.closed
    assert not worker.is_alive()


def test_unfinished_encrypting_writer_never_looks_complete(tmp_path, key):
    recipients = parse_recipients(key.public)
    with (
        pytest.raises(RuntimeError),
        open_encrypting(wb(tmp_path / "a.age"), recipients) as w,
    ):
        w.write(payload(3 * CHUNK))
        raise RuntimeError("the dump failed")
    w2 = open_encrypting(wb(tmp_path / "b.age"), recipients)
    w2.write(payload(100))
    w2.abort()
    for name in ("a.age", "b.age"):
        with pytest.raises(IntegrityError):
            drain(open_decrypting(rb(tmp_path / name), key.identities))


def test_encrypting_to_a_full_disk_is_a_storage_error(key):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    w = open_encrypting(wb("/dev/full", buffering=0), parse_recipients(key.public))
    with pytest.raises(StorageError, match="no space left"):
        w.write(payload(8 << 20))
        w.close()


def test_hashing_reader_checks_at_the_end():
    data = b"abc" * 1000
    good = hashlib.sha256(data).hexdigest()
    assert drain(HashingReader(io.BytesIO(data), sha256=good, size=len(data))) == data
    with pytest.raises(IntegrityError, match=r"x\.gz does not match"):
        drain(HashingReader(io.BytesIO(data), name="x.gz", sha256="0" * 64))
    with pytest.raises(IntegrityError, match="has 3000 bytes, the manifest says 3001"):
        HashingReader(io.BytesIO(data), name="x.gz", sha256=good, size=3001).finish()
    with pytest.raises(IntegrityError, match="longer"):
        drain(HashingReader(io.BytesIO(data), name="x.gz", size=10))


class Pattern(io.RawIOBase):
    """``total`` bytes of a repeated random block, made as they are read."""

    def __init__(self, total: int) -> None:
        self._left = total
        self._block = os.urandom(1 << 20)
        self.sha = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        n = min(len(b), self._left, len(self._block))
        b[:n] = self._block[:n]
        self.sha.update(self._block[:n])
        self._left -= n
        return n


def _rss_kib() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_streaming_memory_stays_bounded(key):
    """96 MB (more than the 64 MiB bound below) through encryption and decryption, read in 1 MiB pieces: memory stays small."""
    total = 96 << 20
    source = Pattern(total)
    enc = open_encrypting_reader(io.BufferedReader(source), parse_recipients(key.public))
    reader = open_decrypting(enc, key.identities)
    sha = hashlib.sha256()
    n = 0
    rss_before = _rss_kib()
    rss_peak = rss_before
    tracemalloc.start()
    try:
        while block := reader.read(1 << 20):
            sha.update(block)
            n += len(block)
            if n % (16 << 20) == 0:
                rss_peak = max(rss_peak, _rss_kib())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        reader.close()
    assert n == total
    assert sha.hexdigest() == source.sha.hexdigest()
    assert peak < 16 << 20, f"Python allocations peaked at {peak >> 20} MiB"
    assert rss_peak - rss_before < 64 << 10, f"RSS grew by {(rss_peak - rss_before) >> 10} MiB"


# --- encrypted backup directories -------------------------------------------------


def make_backup(root: Path, *, status: str = STATUS_DONE) -> Path:
    """A small DONE backup directory, written as dump.py lays one out."""
    path = root / "mysql-moodle_2026-11-24_01-00-00"
    (path / "schema").mkdir(parents=True)
    (path / "data").mkdir()
    gzip, level = get_codec("gzip")
    tables = []
    for i, name in enumerate(["mdl_user", "mdl_grade_grades"], 1):
        schema = f"schema/{i:04d}-{name}.sql"
        (path / schema).write_text(f"CREATE TABLE `{name}` (`id` bigint PRIMARY KEY, `v` text);\n")
        chunks = []
        for part in range(2):
            rows = b"".join(
                b"%d\t%s row %d\n" % (j, MARKER, j) for j in range(part * 5000, (part + 1) * 5000)
            )
            file = f"data/{i:04d}-{name}.{part:05d}.tsv.gz"
            w = DataWriter(path / file, gzip, level, threaded=False)
            w.write(rows)
            w.close()
            chunks.append(Chunk(file, 5000, len(rows), "xxh3-128:" + "0" * 32))
        tables.append(
            TableEntry(
                name=name, schema_file=schema, rows=10_000, columns=["id", "v"], chunks=chunks
            )
        )
    (path / "objects.json").write_text("{}\n")
    (path / "restore-with-mariadb.sh").write_text("#!/bin/sh\necho restore\n")
    files = []
    for p in sorted(path.rglob("*")):
        if p.is_file():
            rel = p.relative_to(path).as_posix()
            size, sha = sha256_file(p)
            kind = (
                rel.split("/")[0]
                if "/" in rel
                else ("script" if rel.endswith(".sh") else "objects")
            )
            files.append(FileEntry(rel, size, sha, kind))
    m = Manifest(
        database="moodle",
        status=status,
        started_at="2026-11-24T01:00:00Z",
        finished_at="2026-11-24T01:02:00Z",
        tables=tables,
        files=files,
    )
    (path / MANIFEST_NAME).write_text(m.to_json())
    return path


def tree(path: Path) -> dict[str, bytes]:
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def backup(tmp_path) -> Path:
    return make_backup(tmp_path / "plain")


def test_encrypt_backup_dir_layout_and_outer_manifest(tmp_path, key, backup):
    (backup / "verify.json").write_text('{"status": "PASS"}\n')
    dst = tmp_path / "enc" / backup.name
    dst.parent.mkdir()
    em = encrypt_backup_dir(backup, dst, parse_recipients(key.public))
    assert is_encrypted_backup(dst) and not is_encrypted_backup(backup)
    original = tree(backup)
    encrypted = tree(dst)
    assert set(encrypted) == {n + ".age" for n in original} | {ENCRYPTED_MANIFEST_NAME}
    assert em.files[-1].name == INNER_MANIFEST_NAME
    assert read_encrypted_manifest(dst) == em
    assert em.recipients == [key.public]
    assert (em.database, em.finished_at) == ("moodle", "2026-11-24T01:02:00Z")
    for f in em.files:
        assert (f.bytes, f.sha256) == sha256_file(dst / f.name)
    outer = (dst / ENCRYPTED_MANIFEST_NAME).read_text()
    for secret_detail in ('"rows"', '"columns"', "content_digest", "CREATE TABLE"):
        assert secret_detail not in outer
    for name, content in encrypted.items():
        assert MARKER not in content, name
    assert not list(dst.parent.glob(".*partial*"))
    assert tree(backup) == original  # the source is untouched


def test_decrypt_backup_dir_round_trip_is_byte_identical(tmp_path, key, backup):
    (backup / "verify.json").write_text('{"status": "PASS"}\n')
    enc, out = tmp_path / "enc", tmp_path / "out"
    encrypt_backup_dir(backup, enc, parse_recipients(key.public))
    manifest = decrypt_backup_dir(enc, out, key.identities)
    assert tree(out) == tree(backup)
    assert read_done_manifest(out) == manifest


def test_ciphertext_verification_needs_no_key(tmp_path, key, backup):
    enc = tmp_path / "enc"
    encrypt_backup_dir(backup, enc, parse_recipients(key.public))
    key.path.unlink()  # no private key anywhere
    report = verify_ciphertext(enc)
    assert report.passed and report.files_checked == len(tree(backup))
    data = sorted(enc.glob("data/*.age"))
    flipped = bytearray(data[0].read_bytes())
    flipped[len(flipped) // 2] ^= 0x40
    data[0].write_bytes(bytes(flipped))
    with open(data[1], "ab") as fh:
        fh.write(b"x")
    (enc / "objects.json.age").unlink()
    problems = verify_ciphertext(enc).problems
    assert len(problems) == 3
    assert f"{data[0].relative_to(enc).as_posix()} does not match its sha256" in problems[0]
    assert "truncated or replaced" in problems[1] and "objects.json.age is missing" in problems[2]


def test_check_identities_names_the_recipients(tmp_path, key, backup):
    _, ed = ssh_key(tmp_path, "ed25519", "ed")
    recipients = parse_recipients(f"{key.public}\n{ed}")
    enc = tmp_path / "enc"
    encrypt_backup_dir(backup, enc, recipients)
    assert check_identities(enc, key.identities).database == "moodle"

    other = AgeKey(tmp_path, "other")
    with pytest.raises(DecryptionError) as info:
        check_identities(enc, other.identities)
    message = str(info.value)
    assert info.value.exit_code == 13
    assert "encrypted to 2 recipients" in message
    assert key.public in message and recipients[1].label in message
    assert f"the identity given ({other.public}" in message and "matches none" in message
    assert other.secret not in message

    with pytest.raises(DecryptionError, match="no identity was given") as info:
        check_identities(enc, [])
    assert key.public in str(info.value)

    # an ssh identity whose public part is unknown is tried, and fails the same way
    wrong_ssh, _ = ssh_key(tmp_path, "ed25519", "wrong")
    with pytest.raises(DecryptionError, match="matches none"):
        check_identities(enc, load_identities(wrong_ssh))


def test_damaged_inner_manifest_is_not_mistaken_for_a_wrong_key(tmp_path, key, backup):
    enc = tmp_path / "enc"
    encrypt_backup_dir(backup, enc, parse_recipients(key.public))
    inner = enc / INNER_MANIFEST_NAME
    content = bytearray(inner.read_bytes())
    content[60] ^= 0x01  # inside the X25519 stanza: age alone would say "no matching keys"
    inner.write_bytes(bytes(content))
    with pytest.raises(IntegrityError, match=r"manifest\.json\.age does not match its sha256"):
        check_identities(enc, key.identities)


def test_wrong_identity_writes_nothing(tmp_path, key, backup):
    enc, out = tmp_path / "enc", tmp_path / "out"
    encrypt_backup_dir(backup, enc, parse_recipients(key.public))
    with pytest.raises(DecryptionError):
        decrypt_backup_dir(enc, out, AgeKey(tmp_path, "other").identities)
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_data_file_fails_decryption_naming_it(tmp_path, key, backup, damage):
    enc, out = tmp_path / "enc", tmp_path / "out"
    encrypt_backup_dir(backup, enc, parse_recipients(key.public))
    victim = sorted(enc.glob("data/*.age"))[1]
    content = bytearray(victim.read_bytes())
    if damage == "flip":
        content[-40] ^= 0x01
    else:
        del content[-40:]
    victim.write_bytes(bytes(content))
    with pytest.raises(IntegrityError, match=victim.name.replace(".", r"\.")):
        decrypt_backup_dir(enc, out, key.identities)
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))


def test_replaced_file_is_caught_by_the_inner_manifest(tmp_path, key, backup):
    """A well-formed .age file swapped in (and the outer manifest edited to match) fails."""
    enc, out = tmp_path / "enc", tmp_path / "out"
    encrypt_backup_dir(backup, enc, parse_recipients(key.public))
    victim = next(iter(sorted(enc.glob("data/*.age"))))
    victim.write_bytes(pyrage.encrypt(b"1\tforged\n", [x25519.Recipient.from_str(key.public)]))
    em = read_encrypted_manifest(enc)
    entry = em.file(victim.relative_to(enc).as_posix())
    entry.bytes, entry.sha256 = sha256_file(victim)
    (enc / ENCRYPTED_MANIFEST_NAME).write_text(em.to_json())
    assert verify_ciphertext(enc).passed  # without the key, nothing to see
    with pytest.raises(IntegrityError, match="does not match its sha256 in the backup's manifest"):
        decrypt_backup_dir(enc, out, key.identities)


def test_unsafe_names_in_the_outer_manifest(tmp_path, key, backup):
    enc = tmp_path / "enc"
    encrypt_backup_dir(backup, enc, parse_recipients(key.public))
    em = read_encrypted_manifest(enc)
    em.files[0].name = "../../etc/cron.d/x.age"
    (enc / ENCRYPTED_MANIFEST_NAME).write_text(em.to_json())
    with pytest.raises(IntegrityError, match="unsafe file path"):
        read_encrypted_manifest(enc)


def test_encrypt_refuses_damaged_unfinished_or_existing(tmp_path, key, backup):
    recipients = parse_recipients(key.public)
    victim = next(iter(sorted(backup.glob("data/*.gz"))))
    good = victim.read_bytes()
    victim.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(IntegrityError, match=victim.name):
        encrypt_backup_dir(backup, tmp_path / "enc", recipients)
    assert not (tmp_path / "enc").exists() and not list(tmp_path.glob(".enc.partial-*"))
    victim.write_bytes(good)
    failed = make_backup(tmp_path / "failed", status=STATUS_FAILED)
    with pytest.raises(IntegrityError, match="not a complete backup"):
        encrypt_backup_dir(failed, tmp_path / "enc", recipients)
    (tmp_path / "exists").mkdir()
    with pytest.raises(StorageError, match="already exists"):
        encrypt_backup_dir(backup, tmp_path / "exists", recipients)
    with pytest.raises(ConfigError, match="at least one recipient"):
        encrypt_backup_dir(backup, tmp_path / "enc", [])


def test_open_backup_file_streams_and_checks(tmp_path, key, backup):
    enc = tmp_path / "enc"
    em = encrypt_backup_dir(backup, enc, parse_recipients(key.public))
    manifest = check_identities(enc, key.identities)
    name = manifest.tables[0].chunks[0].file
    expected = igzip.decompress((backup / name).read_bytes())
    opened: list[str] = []

    def open_remote(age_name: str):
        opened.append(age_name)
        return rb(enc / age_name)

    for source in (enc, open_remote):
        plain = open_backup_file(source, name, key.identities, encrypted=em, manifest=manifest)
        with igzip.IGzipFile(fileobj=plain, mode="rb") as rows:
            assert drain(rows, 50_000) == expected
        assert plain.finish() == (manifest.file(name).bytes, manifest.file(name).sha256)
        plain.close()
    assert opened == [name + ".age"]

    shutil.copy(enc / (name + ".age"), tmp_path / "keep")
    other = manifest.tables[1].chunks[0].file
    shutil.copy(enc / (other + ".age"), enc / (name + ".age"))  # a valid file, the wrong one
    # longer or shorter than recorded, depending on the random data: either way it is named
    with pytest.raises(IntegrityError, match=re.escape(f"{name}.age") + " (is longer|has)"):
        # a small file is read whole before the first plaintext: open may already fail
        drain(open_backup_file(enc, name, key.identities, encrypted=em, manifest=manifest))


def test_stock_age_cli_decrypts_a_backup_and_we_decrypt_its_files(tmp_path, key, backup):
    """The .age files are plain age v1: the age CLI reads ours, we read its."""
    if shutil.which("age") is None:
        pytest.skip("the age CLI is not installed (apt-get install age)")
    enc = tmp_path / "enc"
    encrypt_backup_dir(backup, enc, parse_recipients(key.public))
    for name, content in tree(backup).items():
        out = subprocess.run(
            ["age", "-d", "-i", str(key.path), str(enc / (name + ".age"))],
            check=True,
            capture_output=True,
        ).stdout
        assert out == content, name
    subprocess.run(
        ["age", "-r", key.public, "-o", str(tmp_path / "stock.age"), str(backup / MANIFEST_NAME)],
        check=True,
    )
    with open_decrypting(rb(tmp_path / "stock.age"), key.identities) as r:
        assert r.read() == (backup / MANIFEST_NAME).read_bytes()


def test_outer_manifest_parse_errors():
    for text in ("", "[]", '{"format": "moodump/1"}', '{"format": "moodump-age/1", "files": [1]}'):
        with pytest.raises(IntegrityError, match="not a moodump encrypted-backup manifest"):
            EncryptedManifest.from_json(text)


def test_errors_are_moodump_errors_with_exit_codes():
    assert issubclass(DecryptionError, MoodumpError) and DecryptionError.exit_code == 13
    assert IntegrityError.exit_code == 8


def test_real_dump_encrypted_and_decrypted(root_settings, fresh_db, tmp_path, key):
    """A dump from the rig's MariaDB survives encryption and decryption bit for bit."""
    from helpers import run_sql
    from moodump.dump import DumpOptions, dump
    from moodump.verify import verify

    run_sql(
        root_settings,
        "CREATE TABLE mdl_user (id BIGINT PRIMARY KEY, email VARCHAR(100), note TEXT);"
        "INSERT INTO mdl_user SELECT seq, CONCAT('u', seq, '@example.org'), "
        f"REPEAT('{MARKER.decode()}', 3) FROM seq_1_to_5000;",
        fresh_db,
    )
    plain = tmp_path / "plain"
    dump(root_settings, fresh_db, plain, DumpOptions(threads=1, codec="zstd"))
    enc, out = tmp_path / "enc", tmp_path / "out"
    encrypt_backup_dir(plain, enc, parse_recipients(key.public))
    for name, content in tree(enc).items():
        assert MARKER not in content and b"@example.org" not in content, name
    assert verify_ciphertext(enc).passed
    decrypt_backup_dir(enc, out, key.identities)
    assert tree(out) == {k: v for k, v in tree(plain).items() if k != "verify.json"}
    assert verify(out, record=False).passed
