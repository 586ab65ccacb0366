"""Peak memory and time of ``moodump check-files`` over 1 M ``files`` rows.

Usage::

    PYTHONPATH=src python benchmarks/moodle_files.py                  # 1 M rows, 20 k files
    PYTHONPATH=src python benchmarks/moodle_files.py --rows 200000 --json out.json

Starts a throwaway MariaDB (``LocalServer``), creates Moodle's ``mdl_files`` table (the
sample schema's DDL) and fills it server-side with ``--rows`` rows from the Sequence
engine: one row in ten a directory (``.``, the empty SHA-1), the others pointing at
``rows / 2`` distinct contents (about half of a real site's files share content). It
writes a moodledata tree holding ``--files`` of those contents as real files (the rest
are missing: the memory bound must hold whatever is found), and dumps the table with
moodump. Then each way of checking runs in a fresh child process whose peak RSS
(``VmHWM``, reset after the imports) is its own:

- ``check-files --live`` (the table read with one unbuffered query);
- ``check-files BACKUP`` (the backup's data file streamed and decompressed);
- baseline, "naive": every referenced hash put in a Python ``set`` of strings, which is
  what a straightforward check does, for the ratio.

Results are printed as a Markdown table for docs/moodle.md.

``--scaling 1000000,2000000,4000000`` instead measures, with no server, the check's
growth with the row count: the same code path as ``check-files BACKUP`` (gzip row text
streamed, split, bucketed, merged against an empty filedir) over synthetic data files
of those sizes, each in a fresh process.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = [
    ("live", "check-files --live (unbuffered query, 256 hash buckets)"),
    ("backup", "check-files BACKUP (streamed data file, 256 hash buckets)"),
    ("naive", "baseline: every contenthash in a Python set"),
]


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass


def child(mode: str, port: int, db: str, moodledata: Path, backup: Path) -> dict[str, object]:
    from moodump.db import ConnSettings, connect
    from moodump.moodlesite import check_backup_files, check_live_files

    settings = ConnSettings(host="127.0.0.1", port=port, user="root")
    base = _status_mib("VmRSS")
    _reset_peak()
    t0 = time.monotonic()
    out: dict[str, object] = {}
    if mode == "live":
        r = check_live_files(settings, db, moodledata)
        out = {
            "rows": r.rows,
            "referenced": r.referenced,
            "present": r.present,
            "missing": r.missing.count,
        }
    elif mode == "backup":
        r = check_backup_files(backup, moodledata)
        out = {
            "rows": r.rows,
            "referenced": r.referenced,
            "present": r.present,
            "missing": r.missing.count,
        }
    else:
        with connect(settings) as conn:
            seen = {
                row[0].decode()
                for row in conn.stream(
                    f"SELECT contenthash FROM `{db}`.mdl_files WHERE filename <> '.'"
                )
                if row[0]
            }
        out = {"referenced": len(seen)}
    out["seconds"] = round(time.monotonic() - t0, 2)
    out["rss_base_mib"] = round(base, 1)
    out["peak_mib"] = round(_status_mib("VmHWM"), 1)
    out["peak_over_base_mib"] = round(_status_mib("VmHWM") - base, 1)
    return out


_COLUMNS = [
    "id",
    "contenthash",
    "pathnamehash",
    "contextid",
    "component",
    "filearea",
    "itemid",
    "filepath",
    "filename",
    "userid",
    "filesize",
    "mimetype",
    "status",
    "source",
    "author",
    "license",
    "timecreated",
    "timemodified",
    "sortorder",
    "referencefileid",
]


def scaling_child(rows: int, work: Path) -> dict[str, object]:
    """Peak RSS of the backup path over a synthetic gzip data file of ``rows`` rows."""
    import gzip

    from moodump.compression import iter_uncompressed
    from moodump.moodlesite.filestore import backup_rows, check_filestore, split_lines

    data = work / f"rows-{rows}.gz"
    with gzip.open(data, "wb", compresslevel=1) as fh:
        for i in range(1, rows + 1):
            h = hashlib.sha1(b"c%d" % (i % max(1, rows // 2))).hexdigest().encode()
            fh.write(b"%d\t%s\t%s\t1\tmod_resource\tcontent\t0\t/\tfile %d.pdf\t\\N\t123\t"
                     b"\\N\t0\t\\N\t\\N\t\\N\t0\t0\t0\t\\N\n" % (i, h, h, i))  # fmt: skip
    (work / "md" / "filedir").mkdir(parents=True, exist_ok=True)
    base = _status_mib("VmRSS")
    _reset_peak()
    t0 = time.monotonic()
    r = check_filestore(
        lambda: backup_rows(split_lines(iter_uncompressed(data, codec="gzip")), _COLUMNS),
        work / "md", source="synthetic", prefix="mdl_",
    )  # fmt: skip
    data.unlink()
    return {
        "rows": r.rows, "referenced": r.referenced, "seconds": round(time.monotonic() - t0, 2),
        "peak_over_base_mib": round(_status_mib("VmHWM") - base, 1),
    }  # fmt: skip


def build(work: Path, rows: int, files: int) -> tuple[object, str, Path, Path]:
    from moodump.db import ConnSettings, connect
    from moodump.db.localserver import LocalServer
    from moodump.demo.sample import ddl
    from moodump.dump import DumpOptions, dump

    server = LocalServer(
        base_dir=work / "server", settings={"innodb_buffer_pool_size": "512M"}
    ).start()
    settings = ConnSettings(host="127.0.0.1", port=server.port, user="root")
    db = "moodle_files"
    distinct = max(1, rows // 2)
    create = next(s for s in ddl("mdl_") if s.startswith("CREATE TABLE `mdl_files`"))
    t0 = time.monotonic()
    with connect(settings) as c:
        c.execute(f"CREATE DATABASE {db} CHARACTER SET utf8mb4")
        c.execute(f"USE {db}")
        c.execute(create)
        c.execute(
            "INSERT INTO mdl_files (contenthash, pathnamehash, contextid, component, filearea, "
            "itemid, filepath, filename, filesize, timecreated, timemodified) "
            "SELECT IF(seq MOD 10 = 0, 'da39a3ee5e6b4b0d3255bfef95601890afd80709', "
            f"SHA1(CONCAT('c', seq MOD {distinct}))), SHA1(CONCAT('p', seq)), 1 + seq MOD 5000, "
            "'mod_resource', 'content', seq MOD 1000, '/', "
            "IF(seq MOD 10 = 0, '.', CONCAT('file ', seq, '.pdf')), seq MOD 100000, 0, 0 "
            f"FROM seq_1_to_{rows}"
        )
    print(f"{rows:,} rows in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    moodledata = work / "moodledata"
    filedir = moodledata / "filedir"
    for k in range(min(files, distinct)):
        data = f"c{k}".encode()
        h = hashlib.sha1(data).hexdigest()
        p = filedir / h[:2] / h[2:4] / h
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    backup = dump(settings, db, work / "backup", DumpOptions(threads=2)).path
    return server, db, moodledata, backup


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--work-dir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--scaling", default=None, help="Comma-separated row counts (no server).")
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    ap.add_argument("--scaling-child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.scaling_child:
        print(json.dumps(scaling_child(int(args.scaling_child[0]), Path(args.scaling_child[1]))))
        return
    if args.scaling:
        with tempfile.TemporaryDirectory(prefix="moodump-bench-files-", dir=args.work_dir) as tmp:
            print("| rows | distinct contents | seconds | peak RSS over the imports (MiB) |")
            print("|---:|---:|---:|---:|")
            for n in (int(x) for x in args.scaling.split(",")):
                proc = subprocess.run(
                    [sys.executable, __file__, "--scaling-child", str(n), tmp],
                    capture_output=True, text=True, check=True,
                )  # fmt: skip
                r = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"| {r['rows']:,} | {r['referenced']:,} | {r['seconds']} | "
                      f"{r['peak_over_base_mib']} |")  # fmt: skip
        return
    if args.child:
        mode, port, db, moodledata, backup = args.child
        print(json.dumps(child(mode, int(port), db, Path(moodledata), Path(backup))))
        return
    with tempfile.TemporaryDirectory(prefix="moodump-bench-files-", dir=args.work_dir) as tmp:
        work = Path(tmp)
        server, db, moodledata, backup = build(work, args.rows, args.files)
        try:
            results = {}
            for mode, label in MODES:
                proc = subprocess.run(
                    [sys.executable, __file__, "--child", mode, str(server.port), db,  # type: ignore[attr-defined]
                     str(moodledata), str(backup)],
                    capture_output=True, text=True, check=True, env=os.environ,
                )  # fmt: skip
                results[mode] = {"label": label, **json.loads(proc.stdout.strip().splitlines()[-1])}
        finally:
            server.stop()  # type: ignore[attr-defined]
    print(f"\n{args.rows:,} `mdl_files` rows, {args.files:,} content files on disk\n")
    print("| check | seconds | peak RSS (MiB) | over the imports (MiB) |")
    print("|---|---:|---:|---:|")
    for r in results.values():
        print(f"| {r['label']} | {r['seconds']} | {r['peak_mib']} | {r['peak_over_base_mib']} |")
    if args.json:
        args.json.write_text(
            json.dumps({"rows": args.rows, "files": args.files, "results": results}, indent=1)
        )


if __name__ == "__main__":
    main()
