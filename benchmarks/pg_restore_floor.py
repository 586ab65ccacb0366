"""Where a PostgreSQL restore's CPU goes, and the floor it sets under issue 17's restore
target (``moodump restore`` at most 0.9x the time of ``pg_restore -j 2``).

    python benchmarks/pg_restore_floor.py --scale 1 --reuse --work-dir bench-work \\
        --json docs/benchmarks-postgres-floor.json --markdown docs/benchmarks-postgres-floor.md

On a throwaway cluster (tests/rig_pg.py) holding the Moodle sample as benchmarks/pg.py makes
it, after one ``moodump dump`` and one ``pg_dump -Fd -j 2`` of it (2 workers each):

1. each restore (``moodump restore --threads 2``, ``pg_restore -j 2``) runs ``--rounds``
   times with the server logging every statement's duration; measured are the client's CPU
   (GNU time) and **the server's CPU**: the cluster's processes (the postmaster's own and
   reaped children's CPU from /proc, plus its live children), so the figures hold even on a
   busy machine. The statements' durations are summed by kind: index and constraint builds,
   ``COPY``, the rest;
2. the server's ``COPY FROM`` a server-side file of the two biggest tables, text format (what
   both tools send) against binary format, alternating, ``--rounds`` each: the most server
   CPU any binary-COPY client could save;
3. the least client CPU a restore of moodump's backup can cost: its data files read, their
   sha256 checked and decompressed, nothing parsed or sent.

On a machine whose cores the server and the client share (this one: 2 cores, both tools keep
both busy) a restore's time follows the CPU it costs, client plus server, so the ratio of
the totals is the ratio of the times. The **floor** is moodump's measured server CPU, less
the binary COPY saving (as if converting rows to binary cost the client nothing), plus the
least client CPU: no restore of these files into this server can cost less.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from pg import fill_sample, quiesce, sample_backup, timed  # noqa: E402

from rig_pg import start_server  # noqa: E402

TARGET = 0.9
_TICK = os.sysconf("SC_CLK_TCK")


def server_cpu(data_dir: Path) -> float:
    """CPU seconds the cluster has used so far: the postmaster's own and its reaped
    children's (every backend that ended), plus each live child's. Read a second after
    a command ends: the postmaster reaps a backend that just exited (and adds its CPU to
    its own children's) a moment later."""
    time.sleep(1.0)
    pid = int((data_dir / "postmaster.pid").read_text().split()[0])

    def stat(p: int) -> list[str]:
        with open(f"/proc/{p}/stat") as fh:
            return fh.read().rpartition(")")[2].split()

    f = stat(pid)
    total = sum(int(x) for x in f[11:15])  # utime stime cutime cstime
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            c = stat(int(child))
        except FileNotFoundError:  # ended meanwhile (then counted in cutime)
            continue
        total += int(c[11]) + int(c[12])
    return total / _TICK


def dirtied_mib() -> int:
    """MiB of page cache the whole machine has dirtied so far (/proc/vmstat): over a
    restore, what it wrote (WAL, tables, indexes, sort files) that the kernel must write
    back, holding writers back once too much of it waits."""
    with open("/proc/vmstat") as fh:
        pages = next(int(line.split()[1]) for line in fh if line.startswith("nr_dirtied "))
    return pages * 4096 >> 20


_LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d ")
_DURATION = re.compile(r"duration: ([\d.]+) ms\s+(?:statement|execute[^:]*): (.*)")


def statement_kinds(log: str) -> dict[str, float]:
    """Seconds of the logged statements, by kind (a statement's text spans lines)."""
    out = {"index and constraint builds": 0.0, "COPY": 0.0, "other": 0.0}
    entries: list[list[Any]] = []
    current: list[Any] | None = None
    for line in log.splitlines():
        if _LOG_LINE.match(line):
            m = _DURATION.search(line)
            current = [float(m.group(1)) / 1000, m.group(2)] if m else None
            if current is not None:
                entries.append(current)
        elif current is not None:
            current[1] += " " + line.strip()
    for seconds, sql in entries:
        if sql.lstrip().upper().startswith("COPY"):
            out["COPY"] += seconds
        elif re.search(r"CREATE (UNIQUE )?INDEX|ADD CONSTRAINT", sql):
            out["index and constraint builds"] += seconds
        else:
            out["other"] += seconds
    return {k: round(v, 2) for k, v in out.items()}


def client_floor(backup: Path) -> float:
    """CPU seconds to read, sha256 and decompress every data file of ``backup``."""
    from moodump.compression import open_reader
    from moodump.manifest import read_manifest

    m = read_manifest(backup)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    for t in m.tables:
        for c in t.chunks:
            hashlib.sha256((backup / c.file).read_bytes()).digest()
            with open_reader(backup / c.file, codec=m.codec) as fh:
                while fh.read(1 << 20):
                    pass
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--work-dir", type=Path, default=ROOT / "bench-work")
    ap.add_argument("--reuse", action="store_true", help="reuse a generated sample")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--markdown", type=Path, default=None)
    ap.add_argument("--report-only", action="store_true", help="render --markdown from --json")
    args = ap.parse_args()
    if args.report_only:
        out = json.loads(args.json.read_text())
        out["summary"] = summarise(out)
        args.json.write_text(json.dumps(out, indent=1) + "\n")
        args.markdown.write_text(render(out))
        return
    backup = sample_backup(args.work_dir.resolve(), args.scale, args.reuse)
    gen = start_server()
    pg = next(gen)
    work = Path(tempfile.mkdtemp(prefix="moodump-pgfloor-"))
    try:
        env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGUSER": "postgres",
               "PYTHONPATH": str(ROOT / "src")}  # fmt: skip
        pg.createdb("bench")
        fill_sample(pg, "bench", backup)
        pg.psql("bench", "VACUUM ANALYZE")
        mine, peer = work / "moodump", work / "pg_dump"
        subprocess.run([sys.executable, "-m", "moodump", "dump", "--type", "postgres", "--threads", "2",
                        "-q", "-o", str(mine), "bench"], env=env, check=True)  # fmt: skip
        subprocess.run([str(pg.bindir / "pg_dump"), "-Fd", "-j", "2", "-f", str(peer), "bench"],
                       env=env, check=True)  # fmt: skip
        for sql in ("ALTER SYSTEM SET log_min_duration_statement = 0",
                    "ALTER SYSTEM SET log_line_prefix = '%m [%p] '", "SELECT pg_reload_conf()"):  # fmt: skip
            pg.psql("postgres", sql)
        log = pg.base / "log"
        runs: dict[str, list[dict[str, Any]]] = {}

        def run(name: str, argv: list[str], target: str) -> None:
            quiesce(pg)
            at = log.stat().st_size
            pg.psql("postgres", "CHECKPOINT")
            subprocess.run(["sync"], check=False)  # the last command's writes are not this one's
            s0, d0 = server_cpu(pg.data), dirtied_mib()
            r = timed(argv, env)
            r["server_cpu_s"] = round(server_cpu(pg.data) - s0, 2)
            r["dirtied_mib"] = dirtied_mib() - d0
            r["cores_busy"] = round(r["machine_cpu_s"] / r["seconds"], 2)
            with open(log, errors="replace") as fh:
                fh.seek(at)
                r["statements_s"] = statement_kinds(fh.read())
            runs.setdefault(name, []).append(r)
            print(f"{name:18s} {r}", flush=True)
            pg.dropdb(target)

        for _ in range(args.rounds):
            run("moodump restore", [sys.executable, "-m", "moodump", "restore", str(mine), "--threads", "2",
                                    "-q", "-d", "r1"], "r1")  # fmt: skip
            pg.createdb("r2")
            run("pg_restore -j 2", [str(pg.bindir / "pg_restore"), "-j", "2", "-d", "r2", str(peer)], "r2")
        pg.psql("postgres", "ALTER SYSTEM RESET log_min_duration_statement")
        pg.psql("postgres", "SELECT pg_reload_conf()")
        copy = copy_formats(pg, args.rounds)
        floor_client = client_floor(mine)
        from moodump.manifest import read_manifest

        text_bytes = sum(c.raw_bytes for t in read_manifest(mine).tables for c in t.chunks)
        out = {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "load_average": round(os.getloadavg()[0], 2),
            "scale": args.scale,
            "rounds": args.rounds,
            "runs": runs,
            "copy_formats": copy,
            "client_floor_cpu_s": floor_client,
            "text_bytes": text_bytes,
        }
        out["summary"] = summarise(out)
        print(json.dumps(out["summary"], indent=1))
        if args.json:
            args.json.write_text(json.dumps(out, indent=1) + "\n")
        if args.markdown:
            args.markdown.write_text(render(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        gen.close()


def copy_formats(pg: Any, rounds: int) -> dict[str, Any]:
    """The server's CPU for ``COPY FROM`` a server-side file, text against binary, of the
    two biggest tables of the sample (into a new table without indexes each time)."""
    out: dict[str, Any] = {}
    for table in ("mdl_logstore_standard_log", "mdl_grade_grades"):
        files = {"text": pg.base / f"{table}.txt", "binary": pg.base / f"{table}.bin"}
        pg.psql("bench", f"COPY {table} TO '{files['text']}'")
        pg.psql("bench", f"COPY {table} TO '{files['binary']}' (FORMAT binary)")
        cpu: dict[str, list[float]] = {"text": [], "binary": []}
        for _ in range(rounds):
            for fmt, path in files.items():
                opt = " (FORMAT binary)" if fmt == "binary" else ""
                s0 = server_cpu(pg.data)
                pg.psql("bench", f"CREATE TABLE floor_t (LIKE {table}) WITH (autovacuum_enabled = off); "
                                 f"COPY floor_t FROM '{path}'{opt}; DROP TABLE floor_t")  # fmt: skip
                cpu[fmt].append(round(server_cpu(pg.data) - s0, 2))
        out[table] = {
            "client_parse_cpu_s": parse_cost(files["text"]),
            "bytes": {fmt: p.stat().st_size for fmt, p in files.items()},
            "server_cpu_s": cpu,
            "binary_saves": round(1 - statistics.median(cpu["binary"]) / statistics.median(cpu["text"]), 3),
        }
        for p in files.values():
            p.unlink()
    return out


def parse_cost(path: Path) -> float:
    """CPU seconds pyarrow's CSV reader (C++, the export's parser) takes to split a COPY text
    file into typed columns: what a client converting rows to binary COPY would at least
    do again (split, unescape, parse numbers) before sending them."""
    import pyarrow.csv as pc

    r0 = resource.getrusage(resource.RUSAGE_SELF)
    pc.read_csv(
        path,
        read_options=pc.ReadOptions(autogenerate_column_names=True, use_threads=False, block_size=16 << 20),
        parse_options=pc.ParseOptions(delimiter="\t", quote_char=False, escape_char="\\"),
        convert_options=pc.ConvertOptions(null_values=["\\N"], strings_can_be_null=True),
    )
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    return round(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, 2)


def summarise(out: dict[str, Any]) -> dict[str, Any]:
    """The figures, round by round (each round's two restores ran one after the other, on
    the same state of the machine), and their medians: on this machine the same command's
    CPU varies by up to a third between rounds, so only paired figures compare."""
    kinds = ("index and constraint builds", "COPY", "other")
    saves = max(v["binary_saves"] for v in out["copy_formats"].values())
    least = out["client_floor_cpu_s"]
    # a converter costing what pyarrow's parser costs per byte, over all the rows' text
    parsed = sum(v["bytes"]["text"] for v in out["copy_formats"].values())
    per_byte = sum(v["client_parse_cpu_s"] for v in out["copy_formats"].values()) / parsed
    rounds: list[dict[str, float]] = []
    for m, p in zip(out["runs"]["moodump restore"], out["runs"]["pg_restore -j 2"], strict=False):
        stmts = sum(m["statements_s"][k] for k in kinds)
        copy_share = m["statements_s"]["COPY"] / stmts if stmts else 0.0
        peer = p["client_cpu_s"] + p["server_cpu_s"]
        text_floor = m["server_cpu_s"] + least
        free_floor = m["server_cpu_s"] * (1 - copy_share * saves) + least
        rounds.append({
            "moodump_cpu_s": m["client_cpu_s"] + m["server_cpu_s"], "pg_restore_cpu_s": peer,
            "moodump_server_cpu_s": m["server_cpu_s"], "pg_restore_server_cpu_s": p["server_cpu_s"],
            "ratio_of_cpu": (m["client_cpu_s"] + m["server_cpu_s"]) / peer,
            "ratio_of_seconds": m["seconds"] / p["seconds"], "copy_share": copy_share,
            "text": text_floor, "free": free_floor, "parser": free_floor + per_byte * out["text_bytes"],
            "peer": peer,
        })  # fmt: skip

    def med(key: str) -> float:
        return float(statistics.median(r[key] for r in rounds))

    def floor(key: str) -> list[float]:
        return [round(med(key), 1), round(statistics.median(r[key] / r["peer"] for r in rounds), 3)]

    return {
        "moodump_cpu_s": round(med("moodump_cpu_s"), 1),
        "pg_restore_cpu_s": round(med("pg_restore_cpu_s"), 1),
        "ratio_of_cpu": round(med("ratio_of_cpu"), 3),
        "ratio_of_seconds": round(med("ratio_of_seconds"), 3),
        "rounds_ratio_of_cpu": [round(r["ratio_of_cpu"], 3) for r in rounds],
        "rounds_ratio_of_seconds": [round(r["ratio_of_seconds"], 3) for r in rounds],
        "server_cpu_s": {"moodump": round(med("moodump_server_cpu_s"), 1),
                         "pg_restore": round(med("pg_restore_server_cpu_s"), 1)},
        "copy_share_of_moodump_server": round(med("copy_share"), 3),
        "binary_copy_saves_at_most": saves,
        "floors": {
            "text COPY, client only reads, checks and decompresses": floor("text"),
            "binary COPY converted for free": floor("free"),
            "binary COPY converted at pyarrow's parsing cost": floor("parser"),
        },
        "target": TARGET,
    }


def render(out: dict[str, Any]) -> str:
    s = out["summary"]
    lines = [
        "# Benchmarks: the floor under a PostgreSQL restore (issue 17)",
        "",
        "Generated by `python benchmarks/pg_restore_floor.py` (see its docstring for the method).",
        "",
        f"- When: {out['when']}; machine: {out['machine']} (1-minute load average {out['load_average']} at the end).",
        f"- Data: the Moodle sample at scale {out['scale']}, as benchmarks/pg.py makes it; {out['rounds']} rounds of each restore.",
        "- CPU seconds, not wall seconds: the server's CPU is read from its processes, so other load on the machine does not enter the figures.",
        "",
        "| restore | seconds | client CPU s | server CPU s | cores busy | dirtied MiB "
        "| index and constraint builds s | COPY s | other s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, rs in out["runs"].items():
        for r in rs:
            k = r["statements_s"]
            lines.append(f"| `{name}` | {r['seconds']:.1f} | {r['client_cpu_s']:.1f} | {r['server_cpu_s']:.1f} | "
                         f"{r.get('cores_busy', '')} | {r.get('dirtied_mib', '')} | "
                         f"{k['index and constraint builds']:.1f} | {k['COPY']:.1f} | {k['other']:.1f} |")  # fmt: skip
    lines += [
        "",
        "The last three columns are the server's statement durations summed over the restore's sessions "
        "(two at a time, so about twice the seconds).",
        "",
        "| COPY FROM a server-side file | text: server CPU s | binary: server CPU s | size text / binary | binary saves | client parse CPU s |",
        "|---|---|---|---|---:|---:|",
    ]
    for table, c in out["copy_formats"].items():
        lines.append(f"| `{table}` | {', '.join(map(str, c['server_cpu_s']['text']))} | "
                     f"{', '.join(map(str, c['server_cpu_s']['binary']))} | "
                     f"{c['bytes']['text'] / 2**20:.0f} / {c['bytes']['binary'] / 2**20:.0f} MiB | "
                     f"{c['binary_saves']:.0%} | {c['client_parse_cpu_s']} |")  # fmt: skip
    lines += [
        "",
        f"Least client CPU for moodump's backup (read, sha256, decompress every data file): "
        f"{out['client_floor_cpu_s']} s.",
        "",
        "| figure (medians of the rounds) | value |",
        "|---|---:|",
        f"| moodump restore, client + server CPU | {s['moodump_cpu_s']} s |",
        f"| pg_restore -j 2, client + server CPU | {s['pg_restore_cpu_s']} s |",
        f"| ratio of CPU (moodump / pg_restore), median of the rounds | {s['ratio_of_cpu']} "
        f"({', '.join(map(str, s.get('rounds_ratio_of_cpu', [])))}) |",
        f"| ratio of seconds, median of the rounds | {s['ratio_of_seconds']} "
        f"({', '.join(map(str, s.get('rounds_ratio_of_seconds', [])))}) |",
        f"| COPY's share of moodump's server statements | {s['copy_share_of_moodump_server']:.0%} |",
        f"| the most a binary COPY saves the server (of COPY) | {s['binary_copy_saves_at_most']:.0%} |",
        f"| moodump's server CPU / pg_restore's | {s['server_cpu_s']['moodump']} / {s['server_cpu_s']['pg_restore']} s |",
    ]
    for name, (cpu, ratio) in s["floors"].items():
        lines.append(f"| **floor**, {name} | {cpu} s, **ratio {ratio}** (target <= {s['target']}) |")
    lines += [
        "",
        "## Reading the figures",
        "",
        "- Both restores run the same statements: the same `COPY` text and the same `CREATE INDEX` and "
        "`ADD CONSTRAINT`, which no client setting makes cheaper (benchmarks-postgres.md lists the settings "
        "measured: `maintenance_work_mem`, autovacuum, parallel maintenance workers, COPY FREEZE). moodump's "
        "server CPU is lower where they differ: values over ~2 kB stored with lz4 rather than the server's "
        "pglz, and COPY of one table's files one after the other.",
        "- Seconds follow CPU only while the two cores are busy (*cores busy*: the machine's CPU over the "
        "run divided by its seconds). A restore dirties several GiB of page cache (*dirtied*: WAL, tables, "
        "indexes, sort files); once too much of it waits for the disk the kernel holds the writers back and "
        "the cores idle, for both tools alike. Until 2026-12-06 moodump's restore kept 1.86-1.90 cores "
        "busy against pg_restore's 1.95 (seconds ratio 0.93 at a CPU ratio of 0.88): its two sessions "
        "spent 11 % of a worker's time waiting for each other's table locks (an `ADD PRIMARY KEY` and a "
        "`CREATE INDEX` on one table exclude each other; sampled from `pg_blocking_pids`). The queue now "
        "hands a worker only jobs it would not wait for (`moodump.restore.pg_plan.pick`), as pg_restore "
        "does, and the sha256 check runs beside the pre-data script of a database the restore creates.",
        "- The same restore's server CPU varies by up to a third between rounds on this virtual machine "
        "(the host's load), for both tools alike: the rounds are pairs, one restore right after the "
        "other, and the ratios are the medians of the pairs'.",
        "- The floors: moodump's measured server CPU plus the least client CPU (reading, checking and "
        "decompressing the files; nothing parsed or sent), first with the text COPY both tools send, then "
        "with the binary COPY's saving taken off the server's COPY share as if converting the rows cost the "
        "client nothing, then with that conversion costing per byte what pyarrow's C++ CSV parser costs "
        "(a converter must split, unescape and parse numbers, the work the server then skips). A floor "
        "ratio above the target means no restore of this backup into this server can meet it that way "
        "here; below it, the room left is the difference.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
