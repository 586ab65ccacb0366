"""S3 ETags: the part MD5s of a local file, and the ETags a server may give for them.

An upload is proven by the ETag the server computes from the parts it stored (pyarrow
drops user metadata, so no checksum can travel with the object).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from moodump.errors import IntegrityError
from moodump.storage.base import (
    read_exact,
)

#: pyarrow's multipart part size; every write of exactly this size becomes one part.
PART_SIZE = 10 * 1024 * 1024


def expected_etags(part_md5s: list[bytes]) -> set[str]:
    """The ETags an object of these parts may have (lower-case hex, no quotes).

    A multipart upload gives ``md5(md5_1 + ... + md5_n)-n``; a single PUT of a one-part
    object gives the plain MD5.
    """
    if not part_md5s:
        part_md5s = [hashlib.md5(b"", usedforsecurity=False).digest()]
    out = {
        hashlib.md5(b"".join(part_md5s), usedforsecurity=False).hexdigest() + f"-{len(part_md5s)}"
    }
    if len(part_md5s) == 1:
        out.add(part_md5s[0].hex())
    return out


def _md5(block: bytes) -> bytes:
    return hashlib.md5(block, usedforsecurity=False).digest()


class _PartHasher:
    """sha256 of the whole and MD5 of each part.

    The MD5 (no hardware help, the slower of the two) runs in a helper thread while the
    caller's thread does the sha256; hashlib releases the GIL. Measured on two cores
    against boto3 (benchmarks/upload.py): hashing both on one thread cost a quarter of
    the throughput; hashing both off the uploading thread, ahead of pyarrow, was no
    faster than this.
    """

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool
        self._sha = hashlib.sha256()
        self._md5s: list[bytes] = []
        self.size = 0

    def add(self, block: bytes) -> None:
        md5 = self._pool.submit(_md5, block)
        self._sha.update(block)
        self._md5s.append(md5.result())
        self.size += len(block)

    def sha256(self) -> str:
        return self._sha.hexdigest()

    def md5s(self) -> list[bytes]:
        return list(self._md5s)


def _hash_local(path: Path) -> tuple[str, list[bytes], int]:
    """(sha256, part MD5s, size) of a local file, read in :data:`PART_SIZE` parts."""
    hasher = hashlib.sha256()
    md5s: list[bytes] = []
    size = 0
    try:
        with path.open("rb", buffering=0) as fh:
            while block := read_exact(fh, PART_SIZE):  # type: ignore[arg-type]
                hasher.update(block)
                md5s.append(hashlib.md5(block, usedforsecurity=False).digest())
                size += len(block)
    except OSError as exc:
        raise IntegrityError(
            f"cannot read {path}: {exc.strerror or exc}", hint="check the local file"
        ) from exc
    return hasher.hexdigest(), md5s, size
