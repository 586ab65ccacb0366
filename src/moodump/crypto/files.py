"""Encrypting and decrypting whole files, in the calling thread, checked on both sides."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pyrage

from moodump.compression import storage_error
from moodump.crypto.hashing import HashingReader, HashingWriter
from moodump.crypto.keys import Identity, Recipient, native_identities
from moodump.crypto.streams import _read_tail, _Sink, _Source, _translate, require_recipients
from moodump.errors import DecryptionError, IntegrityError, StorageError
from moodump.fsmodes import open_new


@dataclass(frozen=True)
class Digests:
    """Sizes and sha256s of both sides of one encryption or decryption."""

    plain_bytes: int
    plain_sha256: str
    cipher_bytes: int
    cipher_sha256: str


def encrypt_file(
    src_path: Path | str,
    dst_path: Path | str,
    recipients: Sequence[Recipient],
    *,
    expect_sha256: str | None = None,
    expect_bytes: int | None = None,
) -> Digests:
    """Encrypt one file, streaming; ``dst_path`` appears only when complete.

    ``expect_*`` check the plaintext on the way through (the backup's manifest
    values), so a source damaged on disk is reported instead of being sealed. Raises
    IntegrityError (source does not match) or StorageError (cannot read or write).
    """
    natives = require_recipients(recipients)
    encrypt_io = cast(Any, pyrage).encrypt_io
    return _pump_file(
        lambda s, d: encrypt_io(s, d, natives),
        Path(src_path),
        Path(dst_path),
        decrypting=False,
        expect_sha256=expect_sha256,
        expect_bytes=expect_bytes,
    )


def decrypt_file(
    src_path: Path | str,
    dst_path: Path | str,
    identities: Sequence[Identity],
    *,
    expect_sha256: str | None = None,
    expect_bytes: int | None = None,
) -> Digests:
    """Decrypt one file, streaming; ``dst_path`` appears only when complete and checked.

    ``expect_*`` check the *ciphertext* on the way in (the envelope's values). Compare
    the returned plaintext digest with the inner manifest yourself, or use
    :func:`moodump.crypto.decrypt_backup_dir`, which does.
    """
    natives = native_identities(identities)
    if not natives:
        raise DecryptionError(
            f"{src_path} is encrypted and no identity was given",
            hint="pass the private key with --identity FILE or MOODUMP_IDENTITY_FILE",
        )
    decrypt_io = cast(Any, pyrage).decrypt_io
    return _pump_file(
        lambda s, d: decrypt_io(s, d, natives),
        Path(src_path),
        Path(dst_path),
        decrypting=True,
        expect_sha256=expect_sha256,
        expect_bytes=expect_bytes,
    )


def _pump_file(
    pump: Callable[[_Source, _Sink], None],
    src_path: Path,
    dst_path: Path,
    *,
    decrypting: bool,
    expect_sha256: str | None,
    expect_bytes: int | None,
) -> Digests:
    """Run ``pump`` in this thread from one file to another through hashing wrappers."""
    tmp = dst_path.with_name(f".{dst_path.name}.tmp-{os.getpid()}")
    try:
        fin = open(src_path, "rb")  # noqa: SIM115 - closed by the HashingReader below
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise IntegrityError(
                f"missing file {src_path}", hint="the backup is incomplete"
            ) from exc
        raise StorageError(
            f"cannot read {src_path}: {exc.strerror}", hint="check permissions"
        ) from exc
    reader = HashingReader(
        fin,
        name=str(src_path),
        sha256=expect_sha256,
        size=expect_bytes,
        where="encrypted.json" if decrypting else "the manifest",
    )
    try:
        fout = open_new(tmp)  # closed by the HashingWriter below
    except OSError as exc:
        reader.close()
        raise storage_error(exc, dst_path) from exc
    writer = HashingWriter(fout)
    source = _Source(reader.read)
    sink = _Sink(writer.write)
    try:
        try:
            pump(source, sink)
            _read_tail(source.read, str(src_path))
            writer.close()
        except BaseException as exc:
            err = _translate(exc, str(src_path), source, sink, decrypting=decrypting)
            if err is exc:
                raise
            raise err from exc
        tmp.replace(dst_path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    finally:
        reader.close()
    if decrypting:
        return Digests(writer.size, writer.hexdigest(), reader.size, reader.hexdigest())
    return Digests(reader.size, reader.hexdigest(), writer.size, writer.hexdigest())
