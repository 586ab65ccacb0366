"""Parquet export speed and memory, against the restore of the same tables (issue 15).

    python benchmarks/export.py --scale 1 --reuse          # ~5 min at scale 1
    python benchmarks/export.py --scale 0.05 --rounds 1    # a quick look

Uses the runner's MariaDB and sample Moodle database of benchmarks/run.py (``--work-dir``,
default ./bench-work; generated at ``--scale`` unless ``--reuse`` finds it), dumps it once
with moodump (gzip, 2 threads; kept as ``export-backup-<scale>``), then measures, each
in a fresh process (benchmarks/_measure.py: wall time, user+sys CPU of the process tree,
peak RSS from VmHWM, mariadbd CPU, other CPU on the machine):

- ``moodump export --table mdl_logstore_standard_log`` with 1 and 2 workers;
- ``moodump restore --table mdl_logstore_standard_log`` with 2 threads (the same table
  loaded back into a scratch database: the other way to get at the rows);
- ``moodump export`` of the whole backup with 2 workers (the memory figure).

Rows per second per core is rows / client CPU seconds (user+sys): on a machine shared
with other work, wall time says little, CPU time is what the export costs. The load
average and the other CPU of the machine during each run are reported with it.
Results go to docs/benchmarks-export.md (and the JSON beside it).
"""

from __future__ import annotations

# The connector's C extension must load before anything imports hashlib or ssl.
import moodump.db.connection  # isort: skip  # noqa: F401

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import BenchServer, db_name, log_to_stderr
from _measure import NCPU, Stage, run_pipeline

from moodump.manifest import read_manifest

ROOT = Path(__file__).resolve().parent.parent
LOGSTORE = "mdl_logstore_standard_log"


def _moodump(*args: str) -> list[str]:
    return [sys.executable, "-m", "moodump", *args]


def _row(name: str, rows: int, m: Any, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    cpu = m.client_cpu_s
    return {
        "name": name,
        "rows": rows,
        "wall_s": round(m.wall_s, 2),
        "client_cpu_s": round(cpu, 2),
        "server_cpu_s": round(m.server_cpu_s, 2),
        "other_cpu_s": round(m.other_cpu_s, 2),
        "rows_per_cpu_s": round(rows / cpu) if cpu else None,
        "rows_per_total_cpu_s": round(rows / (cpu + m.server_cpu_s)) if cpu else None,
        "rows_per_wall_s": round(rows / m.wall_s) if m.wall_s else None,
        "peak_rss_mb": round(m.peak_rss_bytes / 1e6, 1),
        "ok": m.ok,
        **(extra or {}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--work-dir", type=Path, default=ROOT / "bench-work")
    ap.add_argument("--reuse", action="store_true", help="reuse the generated database")
    ap.add_argument("--rounds", type=int, default=2, help="runs of each row (median shown)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks-export.md")
    ap.add_argument("--report-only", action="store_true", help="render the markdown from the JSON")
    args = ap.parse_args()
    if args.report_only:
        args.out.write_text(render(json.loads(args.out.with_suffix(".json").read_text())))
        return

    work = args.work_dir.resolve()
    srv = BenchServer(work, {"innodb-buffer-pool-size": "1G"}).start()
    results: list[dict[str, Any]] = []
    try:
        _entry, backup = srv.sample_backup(work, args.scale, reuse=args.reuse, log=log_to_stderr)
        manifest = read_manifest(backup)
        log_rows = manifest.table(LOGSTORE).rows
        all_rows = sum(t.rows for t in manifest.tables if t.kind == "table")
        out = work / "export-out"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))

        def run(name: str, argv: list[str], rows: int, **extra: Any) -> None:
            runs = []
            for _ in range(args.rounds):
                shutil.rmtree(out, ignore_errors=True)
                load0 = os.getloadavg()[0]
                m = run_pipeline([Stage(argv)], server_pid=srv.pid, env=env)
                if not m.ok:
                    raise SystemExit(f"{name} failed: {m.stderr_tail}")
                runs.append(_row(name, rows, m, {"load_avg_1m": round(load0, 2), **extra}))
                log_to_stderr(f"{name}: {runs[-1]}")
            best = sorted(runs, key=lambda r: r["client_cpu_s"])[len(runs) // 2]
            best["rounds"] = len(runs)
            best["rows_per_cpu_s_all"] = [r["rows_per_cpu_s"] for r in runs]
            best["peak_rss_mb_max"] = max(r["peak_rss_mb"] for r in runs)
            results.append(best)

        for workers in (1, 2):
            run(
                f"export {LOGSTORE}, {workers} worker(s)",
                _moodump("export", str(backup), "-o", str(out), "--table", LOGSTORE,
                         "--workers", str(workers), "--quiet"),
                log_rows, workers=workers,
            )  # fmt: skip
        target = "bench_export_restore"
        srv.drop_database(target)
        run(
            f"restore {LOGSTORE}, 2 threads",
            _moodump("restore", str(backup), "--socket", srv.socket, "-u", "root",
                     "--database", target, "--table", LOGSTORE, "--threads", "2",
                     "--drop", "--yes", "--quiet"),
            log_rows, workers=2,
        )  # fmt: skip
        srv.drop_database(target)
        run(
            "export of the whole backup, 2 workers",
            _moodump("export", str(backup), "-o", str(out), "--workers", "2", "--quiet"),
            all_rows, workers=2,
        )  # fmt: skip
        shutil.rmtree(out, ignore_errors=True)
    finally:
        srv.stop()

    doc = {
        "scale": args.scale,
        "database": db_name(args.scale),
        "machine": {
            "cpus": NCPU,
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": results,
    }
    args.out.with_suffix(".json").write_text(json.dumps(doc, indent=1) + "\n")
    args.out.write_text(render(doc))
    log_to_stderr(f"wrote {args.out}")


def render(doc: dict[str, Any]) -> str:
    lines = [
        "| run | rows | wall s | client CPU s | rows / CPU-s (per core) | mariadbd CPU s | "
        "rows / (client + server) CPU-s | rows / wall-s | peak RSS MB | other CPU s | "
        "load (1 min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in doc["results"]:
        lines.append(
            f"| {r['name']} | {r['rows']:,} | {r['wall_s']} | {r['client_cpu_s']} | "
            f"{r['rows_per_cpu_s']:,} | {r['server_cpu_s']} | {r['rows_per_total_cpu_s']:,} | "
            f"{r['rows_per_wall_s']:,} | {r['peak_rss_mb_max']} | {r['other_cpu_s']} | "
            f"{r['load_avg_1m']} |"
        )
    res = doc["results"]
    median = statistics.median(r["rows_per_cpu_s"] for r in res[:2])
    one, two, restore, whole = res[0], res[1], res[2], res[3]
    restore_cpu = restore["client_cpu_s"] + restore["server_cpu_s"]
    return (
        "# Parquet export benchmark\n\n"
        f"Generated by `python benchmarks/export.py --scale {doc['scale']:g} --reuse` on "
        f"{doc['measured_at']} ({doc['machine']['cpus']} CPUs, {doc['machine']['platform']}, "
        f"Python {doc['machine']['python']}); sample Moodle database `{doc['database']}`. "
        "Each row is the median (by CPU) of its rounds; peak RSS is the largest of them "
        "(VmHWM of the moodump process). Re-render with `--report-only`.\n\n"
        + "\n".join(lines)
        + f"""

**The machine was shared** with other work while this ran: "other CPU s" is the busy CPU
of everything else during each run (up to {max(r["other_cpu_s"] for r in res):.0f} s, with
1-minute load averages of {min(r["load_avg_1m"] for r in res)}-{max(r["load_avg_1m"] for r in res)}
on 2 cores), so wall times and rows per wall-second are not the export's speed;
rows per CPU-second (user+sys of the moodump process tree) is what it costs.

## Against the targets of issue 15

- **Speed: not met.** The logstore table exports at {median:,.0f} rows per CPU-second
  (median of the 1- and 2-worker rows), against the target of 1,500,000; before the
  speed work of the `export-speed` branch the same benchmark measured 201,640 (1
  worker) and 176,503 (2 workers) on this machine. What that work changed (each commit
  states its own measurement): Parquet encodings per column from the first row group
  (dictionary only for repeating columns, `DELTA_BINARY_PACKED` for integers and
  times: the writer's CPU for one 277,778-row file 0.51 s -> 0.27 s, the file 12.1 MB
  -> 7.8 MB), row text read into one reused buffer per worker, repeating text columns
  unescaped and decoded once per distinct value, the backslash check as one scan of a
  column's bytes (Arrow's `match_substring` for it was 7 % of all CPU), glibc's mmap
  threshold at 4 MiB instead of 128 KiB and jemalloc's decay at 1 s instead of 0 (page
  faults of the 2-worker run 1.3 M -> 0.35 M).
- **What bounds it now** (perf, 1-worker export of the table, share of all samples):
  pyarrow's CSV tokenizer and number parsing ~23 %, Parquet encoding and statistics
  ~15 % plus zstd ~8 %, memcpy/memcmp (copies, statistics, dictionaries) ~10 %, the
  Python interpreter ~10 % (about 1 s of it is start-up and imports), the compute
  kernels and UTF-8 validation ~11 %, gzip decompression (isal) ~8 % and sha256 ~2 %,
  the kernel ~6 %. The CSV tokenizer alone is ~0.85 us per row of this table, more than
  the 0.67 us per row the target allows for everything: the target needs a
  purpose-built parser and Parquet encoder in C (or a binary dump format), not
  pyarrow's general ones. Other Parquet settings were measured and left: lz4 saved
  ~10 % of the writer's CPU for a 31 % larger file, snappy nothing (28 % larger); page size (256 KiB, 4 MiB),
  the write batch size and combining chunks change nothing measurable; statistics cost
  ~0.04 s per file and are kept (readers prune with them).
- **Threads or processes:** workers are threads; a big table is one Parquet file per
  data file of the backup (18 for the logstore table), exported in parallel. Two
  1-worker processes run at the same time cost 17.4 and 17.9 s of CPU each against
  17.8 s for one alone (library call, not this benchmark), so the two cores do not slow
  each other; what two threads in one process cost more than one thread
  ({one["client_cpu_s"]} s and {two["client_cpu_s"]} s above) was mostly kernel time
  (perf before the jemalloc decay change: 12 % of the samples at 2 workers, 6 % at 1;
  page faults and memory accounting), which the mmap threshold and the decay reduce. Processes were not
  built: each would hold its own ~165 MB of Python and pyarrow, against the 300 MB
  target. Wall-time scaling cannot be measured on this shared machine.
- **Memory: met.** Peak RSS at 2 workers: {two["peak_rss_mb_max"]} MB for the logstore
  table, {whole["peak_rss_mb_max"]} MB for the whole scale-1 backup ({whole["rows"]:,}
  rows, every table), under the 300 MB target. What keeps it down: whole-row blocks of
  1 MiB, one reused buffer per worker, parsed with `read_csv` (pyarrow's streaming CSV
  reader reads up to 32 blocks ahead), jemalloc as pyarrow's pool while exporting
  (mimalloc, the default, measured 318 MB against 277 MB), row groups that also end at
  8 MiB of Arrow data (wide tables) and glibc's mmap threshold fixed at 4 MiB. Without
  a fixed threshold the whole backup peaked at 265-290 MB; with jemalloc purging at
  once (decay 0) it was 10 MB lower, for 2.5x the page faults and 5-13 % more CPU in
  the runs measured. About 165 MB of the peak is
  the process before the first row (Python, the CLI, pyarrow).
- **Against a restore of the same table** (moodump restore --table, 2 threads, the
  other way to get at the rows): the restore costs {restore["client_cpu_s"]} s of client
  CPU and {restore["server_cpu_s"]} s of mariadbd CPU ({restore_cpu:.0f} s in all), the
  export {two["client_cpu_s"]} s and no server: {restore_cpu / two["client_cpu_s"]:.1f}x less CPU, and
  the result is read by DuckDB or pandas without a server.
"""
    )


if __name__ == "__main__":
    main()
