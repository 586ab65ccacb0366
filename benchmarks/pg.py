"""PostgreSQL benchmark: moodump against ``pg_dump -Fd -j 2`` / ``pg_restore -j 2``.

One run on one machine, on a throwaway cluster (tests/rig_pg.py) holding one of:

- ``--data sample`` (the default, what issue 17 asks for): the Moodle sample database of
  the generator (``moodump.demo.sample``) at ``--scale``, as Moodle creates it on
  PostgreSQL: its 483 tables from ``moodump.demo.sample.schema.pg_ddl`` (Moodle's pgsql
  generator: BIGSERIAL ids, SMALLINT/INTEGER/BIGINT, VARCHAR, TEXT, NUMERIC, its index
  names) and the rows of the MariaDB sample of benchmarks/run.py (``--work-dir``; made
  at ``--scale`` unless ``--reuse`` finds it), dumped by moodump and copied in with
  ``COPY`` (the data-file text format is COPY's text format), then indexed and analysed;
- ``--data pgbench``: ``pgbench -i -s SCALE`` (``pgbench_accounts``: SCALE x 100,000 rows
  whose filler is blanks, which zlib compresses at no cost) plus ``--small`` small
  ``mdl_*`` tables.

Measured: wall time and peak RSS (``wait4``) of each command as a process, at 2 workers.
``pg_dump -Fd`` uses its default compression (gzip level 6 ... zlib's default), moodump its
default (isal gzip level 1). Restores go into a new database each. Ratios are moodump / peer.

    python benchmarks/pg.py --scale 1 --reuse \\
        --json docs/benchmarks-postgres.json --markdown docs/benchmarks-postgres.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from rig_pg import start_server  # noqa: E402


def timed(argv: list[str], env: dict[str, str]) -> dict[str, float]:
    """Seconds, peak RSS (MiB) and CPU of one command, and the machine's CPU meanwhile.

    The peak RSS is GNU time's ``%M``: the largest resident set of the command or any of
    its processes (pg_dump's workers, moodump's psql). Not this runner's own ``wait4``:
    Linux carries a forking parent's RSS into the child's ``ru_maxrss``, and this runner
    holds the loader's buffers.
    """
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        before = _machine_cpu()
        t0 = time.monotonic()
        proc = subprocess.run(["/usr/bin/time", "-o", tf.name, "-f", "%M %U %S", *argv], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)  # fmt: skip
        took = time.monotonic() - t0
        if proc.returncode != 0:
            raise SystemExit(
                f"{argv[0]} failed ({proc.returncode}): {proc.stderr.decode()[-2000:]}"
            )
        rss_kib, user, system = tf.read().split()[-3:]
    return {
        "seconds": round(took, 3),
        "rss_mib": round(int(rss_kib) / 1024, 1),
        "client_cpu_s": round(float(user) + float(system), 2),
        "machine_cpu_s": round(_machine_cpu() - before, 2),
    }


def _machine_cpu() -> float:
    """Busy CPU seconds of the whole machine so far (all cores; /proc/stat user, nice,
    system, irq, softirq, steal): over a command, its own CPU plus the server's
    (backends, autovacuum, parallel workers) plus whatever else ran."""
    with open("/proc/stat") as fh:
        v = [int(x) for x in fh.readline().split()[1:]]
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def quiesce(pg: Any, timeout: float = 600) -> None:
    """Wait until no autovacuum worker runs (one still busy with the database a previous
    command restored would take CPU from the next command), then write the server's dirty
    buffers and the page cache out (``CHECKPOINT``, ``sync``): a restore dirties ~9 GiB,
    which the kernel would otherwise write back during the next command, slowing it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = pg.psql("postgres", "SELECT count(*) FROM pg_stat_activity "
                                   "WHERE backend_type = 'autovacuum worker'")  # fmt: skip
        if [w for w in busy.split() if w.isdigit()] == ["0"]:
            break
        time.sleep(1)
    pg.psql("postgres", "CHECKPOINT")
    os.sync()


def fill_pgbench(pg: Any, db: str, env: dict[str, str], scale: int, small_tables: int) -> None:
    """``pgbench -i`` plus small Moodle-shaped tables."""
    subprocess.run([str(pg.bindir / "pgbench"), "-i", "-q", "-s", str(scale), db],
                   env=env, check=True, capture_output=True)  # fmt: skip
    small = []
    for i in range(small_tables):
        rows = (i * 37) % 400
        small.append(
            f"CREATE TABLE mdl_t{i:03d} (id bigserial PRIMARY KEY, course bigint NOT NULL DEFAULT 0, "
            f"name varchar(255) NOT NULL DEFAULT '', intro text, timemodified bigint NOT NULL DEFAULT 0);"
            f"CREATE INDEX mdl_t{i:03d}_cou_ix ON mdl_t{i:03d} (course);"
            f"INSERT INTO mdl_t{i:03d} (course, name, intro, timemodified) SELECT g % 17, 'name ' || g, "
            f"repeat('intro text ', g % 20), 1700000000 + g FROM generate_series(1, {rows}) g;"
        )
    pg.psql(db, "".join(small))


def sample_backup(work: Path, scale: float, reuse: bool) -> Path:
    """A moodump (MySQL) backup of the MariaDB sample at ``scale`` (made or reused)."""
    from _data import BenchServer, log_to_stderr

    srv = BenchServer(work, {"innodb-buffer-pool-size": "1G"}).start()
    try:
        return srv.sample_backup(work, scale, reuse=reuse, log=log_to_stderr)[1]
    finally:
        srv.stop()  # not running while PostgreSQL is measured


_NUL = re.compile(rb"\\(.)|\x00|\r", re.S)


def _pg_escape(m: re.Match[bytes]) -> bytes:
    if m.group(0) == b"\r":
        return b"\\r"  # COPY reads a raw CR as an end of line
    return b"" if m.group(1) in (None, b"0") else m.group(0)


def _without_nul(data: bytes) -> tuple[bytes, bytes]:
    """(whole lines of ``data`` without NUL characters, the unfinished last line).

    PostgreSQL text cannot hold NUL (a MariaDB column can, and the sample's step data
    does): Moodle on PostgreSQL never stores one, so the copy drops them (raw, or
    escaped as ``\\0``). A raw carriage return (MariaDB's format leaves it as it is)
    becomes COPY's ``\\r``. Bytes that are not UTF-8 (the sample's controller blobs
    in a text column; Moodle stores them base64-encoded) become U+FFFD.
    """
    cut = data.rfind(b"\n") + 1
    whole, rest = data[:cut], data[cut:]
    if b"\x00" in whole or b"\\0" in whole or b"\r" in whole:
        whole = _NUL.sub(_pg_escape, whole)
    try:
        whole.decode("utf-8")
    except UnicodeDecodeError:
        whole = whole.decode("utf-8", "replace").encode("utf-8")
    return whole, rest


def fill_sample(pg: Any, db: str, backup: Path) -> None:
    """Moodle's 483 tables as on PostgreSQL, with the rows of the MariaDB sample ``backup``.

    The data files are COPY text already (TAB, ``\\N``, backslash escapes); the Moodle
    schema has no binary column, so they are copied in as they are, two tables at a time,
    and the indexes are built after the load.
    """
    import psycopg

    from moodump.compression import open_reader
    from moodump.demo.sample.schema import pg_ddl
    from moodump.manifest import read_manifest

    statements = pg_ddl()
    with tempfile.NamedTemporaryFile("w", suffix=".sql") as ddl:
        ddl.write(";\n".join(create for _n, create, _i in statements) + ";\n")
        ddl.flush()
        os.chmod(ddl.name, 0o644)
        pg.psql(db, file=Path(ddl.name))
    manifest = read_manifest(backup)
    dsn = f"host=127.0.0.1 port={pg.port} user=postgres dbname={db}"
    entries = [t for t in manifest.tables if t.kind == "table" and t.chunks]
    entries.sort(key=lambda t: -t.rows)

    def load(entry: Any) -> None:
        cols = ", ".join('"' + c + '"' for c in entry.columns)
        with (
            psycopg.connect(dsn, autocommit=True) as conn,
            conn.cursor() as cur,
            cur.copy(f'COPY "{entry.name}" ({cols}) FROM STDIN') as copy,
        ):
            for chunk in entry.chunks:
                rest = b""
                with open_reader(backup / chunk.file) as f:
                    while block := f.read(1 << 20):
                        block, rest = _without_nul(rest + block)
                        copy.write(block)
                copy.write(_without_nul(rest + b"\n")[0][:-1] if rest else b"")

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(load, entries))
    indexes = [i for _n, _c, idx in statements for i in idx]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda sql: pg.psql(db, sql), indexes))
    # the id sequences where Moodle's would be: at the largest id
    pg.psql(
        db,
        """DO $$ DECLARE r record; m bigint; BEGIN
      FOR r IN SELECT c.relname FROM pg_class c WHERE c.relkind = 'r'
               AND c.relnamespace = 'public'::regnamespace LOOP
        EXECUTE format('SELECT max(id) FROM %I', r.relname) INTO m;
        IF m IS NOT NULL THEN
          PERFORM setval(pg_get_serial_sequence(quote_ident(r.relname), 'id'), m);
        END IF;
      END LOOP; END $$""",
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", choices=("sample", "pgbench"), default="sample")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="sample scale, or pgbench scale (x 100,000 accounts)")  # fmt: skip
    ap.add_argument("--small", type=int, default=300, help="pgbench: small Moodle-shaped tables")
    ap.add_argument("--work-dir", type=Path, default=ROOT / "bench-work",
                    help="sample: the MariaDB server and sample of benchmarks/run.py")  # fmt: skip
    ap.add_argument("--reuse", action="store_true", help="sample: reuse a generated sample")
    ap.add_argument("--rounds", type=int, default=3, help="runs of each command (medians shown)")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    ap.add_argument("--markdown", type=Path, default=None, help="render a results page here")
    ap.add_argument("--report-only", action="store_true", help="render --markdown from --json")
    args = ap.parse_args()
    if args.report_only:
        args.markdown.write_text(render(json.loads(args.json.read_text())))
        return

    backup = (
        sample_backup(args.work_dir.resolve(), args.scale, args.reuse)
        if args.data == "sample"
        else None
    )
    load_before = os.getloadavg()[0]
    gen = start_server()
    pg = next(gen)
    work = Path(tempfile.mkdtemp(prefix="moodump-pgbench-"))
    try:
        bindir = pg.bindir
        env = {**os.environ, "PGHOST": "127.0.0.1", "PGPORT": str(pg.port), "PGUSER": "postgres",
               "PYTHONPATH": str(ROOT / "src")}  # fmt: skip
        db = "bench"
        pg.createdb(db)
        t0 = time.monotonic()
        if backup is not None:
            fill_sample(pg, db, backup)
        else:
            fill_pgbench(pg, db, env, int(args.scale), args.small)
        print(f"loaded in {time.monotonic() - t0:.0f} s", flush=True)
        pg.psql(db, "VACUUM ANALYZE")
        with_size = subprocess.run(
            [str(bindir / "psql"), "-X", "-At", "-d", db, "-c",
             "SELECT pg_database_size(current_database()), (SELECT count(*) FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace), (SELECT sum(n_live_tup) FROM pg_stat_user_tables)"],
            env=env, check=True, capture_output=True, text=True,
        ).stdout.strip().split("|")  # fmt: skip
        runs: dict[str, list[dict[str, float]]] = {}

        def run(name: str, argv: list[str], restored: str = "") -> None:
            quiesce(pg)
            r = timed(argv, env)
            runs.setdefault(name, []).append(r)
            print(f"{name:24s} {r}", flush=True)
            if restored:  # its autovacuum must not run into the next command
                pg.dropdb(restored)

        # every table and index in the page cache before the first command
        pg.psql(db, "CREATE EXTENSION IF NOT EXISTS pg_prewarm; SELECT count(pg_prewarm(c.oid, 'read')) "
                    "FROM pg_class c WHERE c.relkind IN ('r', 'i', 't')")  # fmt: skip
        pg.psql(db, "DROP EXTENSION pg_prewarm")
        mine = work / "moodump"
        peer = work / "pg_dump"
        for n in range(args.rounds):
            last = n == args.rounds - 1
            shutil.rmtree(mine, ignore_errors=True)
            shutil.rmtree(peer, ignore_errors=True)
            run("moodump dump", [sys.executable, "-m", "moodump", "dump", "--type", "postgres",
                                 "--threads", "2", "-q", "-o", str(mine), db])  # fmt: skip
            run(
                "pg_dump -Fd -j 2", [str(bindir / "pg_dump"), "-Fd", "-j", "2", "-f", str(peer), db]
            )
            run("moodump restore", [sys.executable, "-m", "moodump", "restore", str(mine),
                                    "--threads", "2", "-q", "-d", "bench_r1"],
                restored="" if last else "bench_r1")  # fmt: skip
            pg.createdb("bench_r2")
            run("pg_restore -j 2", [str(bindir / "pg_restore"), "-j", "2", "-d", "bench_r2", str(peer)],
                restored="bench_r2")  # fmt: skip
        same = _compare_restored(pg, db, "bench_r1")
        pg.dropdb("bench_r1")
        results = {name: _median(rs) for name, rs in runs.items()}

        def du(p: Path) -> int:
            return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())

        out = {
            "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
            "data": args.data,
            "scale": args.scale,
            "small_tables": args.small,
            "rows": int(with_size[2] or 0),
            "database_bytes": int(with_size[0]),
            "tables": int(with_size[1]),
            "rounds": args.rounds,
            "results": results,
            "runs": runs,
            "restored_equal": same,
            "sizes": {"moodump": du(mine), "pg_dump -Fd": du(peer)},
            "ratios": {
                "dump": round(
                    results["moodump dump"]["seconds"] / results["pg_dump -Fd -j 2"]["seconds"], 2
                ),
                "restore": round(
                    results["moodump restore"]["seconds"] / results["pg_restore -j 2"]["seconds"], 2
                ),
            },
        }
        print(json.dumps(out["ratios"]))
        if args.json:
            args.json.write_text(json.dumps(out, indent=1) + "\n")
        if args.markdown:
            args.markdown.write_text(render(out))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        gen.close()


def _median(rs: list[dict[str, float]]) -> dict[str, float]:
    """The run of median time (its own RSS and CPU figures), with the peak RSS of all."""
    mid = sorted(rs, key=lambda r: r["seconds"])[len(rs) // 2]
    return dict(mid, rss_mib=max(r["rss_mib"] for r in rs))


def _compare_restored(pg: Any, source: str, restored: str) -> bool:
    """Row counts of every table equal in the source and moodump's restore (a sanity
    check that the timed restore did the whole job; the tests prove exactness)."""
    q = ("SELECT string_agg(format('%s=%s', c.relname, "
         "(xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %I.%I', "
         "n.nspname, c.relname), false, true, '')))[1]::text), ',' ORDER BY c.relname) "
         "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
         "WHERE c.relkind = 'r' AND n.nspname = 'public'")  # fmt: skip
    return pg.psql(source, q) == pg.psql(restored, q)


def _mid(xs: list[float]) -> str:
    """The median of per-round ratios, or "" when there are none."""
    return f"{sorted(xs)[len(xs) // 2]:.2f}" if xs else ""


def verdict(r: dict) -> str:  # type: ignore[type-arg]
    """Which targets this run met, in words."""
    res = r["results"]
    rss = max(res["moodump dump"]["rss_mib"], res["moodump restore"]["rss_mib"])
    checks = [
        ("dump <= 0.6x", r["ratios"]["dump"] <= 0.6),
        ("restore <= 0.9x", r["ratios"]["restore"] <= 0.9),
        ("RSS <= 150 MiB", rss <= 150),
    ]
    met = [n for n, ok in checks if ok]
    missed = [n for n, ok in checks if not ok]
    text = f"Met in this run, by the medians: {', '.join(met) or 'none'}."
    if missed:
        text += f" **Not met: {', '.join(missed)}** (the ratios are given as measured)."
    runs = r.get("runs", {})
    for what, mine, peer, target in (
        ("dump", "moodump dump", "pg_dump -Fd -j 2", 0.6),
        ("restore", "moodump restore", "pg_restore -j 2", 0.9),
    ):
        rounds = [
            m["seconds"] / p["seconds"]
            for m, p in zip(runs.get(mine, []), runs.get(peer, []), strict=False)
        ]
        over = [x for x in rounds if x > target]
        if over:
            text += (
                f" **The {what} missed its target in {len(over)} of {len(rounds)} rounds** "
                f"(up to {max(over):.2f}): not a reliable result."
            )
    return text


def render(r: dict) -> str:  # type: ignore[type-arg]
    res = r["results"]
    if r.get("data", "pgbench") == "sample":
        data = (f"- Data: the Moodle sample at scale {r['scale']:g} (`moodump.demo.sample`), as "
                f"Moodle creates it on PostgreSQL: {r['tables']} tables, {r.get('rows', 0):,} rows, "
                f"{r['database_bytes'] / 2**20:,.0f} MiB on disk with indexes.")  # fmt: skip
    else:
        data = (f"- Data: `pgbench -i -s {r['scale']:g}` plus {r['small_tables']} small Moodle-shaped "
                f"tables: {r['tables']} tables, {r['database_bytes'] / 2**20:.0f} MiB on disk.")  # fmt: skip
    lines = [
        "# Benchmarks: PostgreSQL",
        "",
        "Generated by `python benchmarks/pg.py` (see its docstring for the data and method).",
        "",
        f"- When: {r['when']}; machine: {r['machine']} (1-minute load average "
        f"{r['load_average'][0]} before, {r['load_average'][1]} after).",
        data,
        f"- Both tools at 2 workers, each command a separate process, {r.get('rounds', 1)} "
        "rounds in turn (dump, pg_dump, restore, pg_restore); the table shows each command's "
        "median run. Before each command the runner waits until no autovacuum worker is busy, "
        "then runs `CHECKPOINT` and `sync` (the ~9 GiB a restore dirties would otherwise be "
        "written back during the next command), and drops each restored database once "
        "measured (its autovacuum would otherwise take CPU from the next command).",
        "- Peak RSS: GNU time's `%M` (the largest process of the command). Client CPU: the "
        "command's processes; machine CPU: every process meanwhile (the command, the "
        "PostgreSQL backends, autovacuum and parallel workers, anything else).",
        "",
        "| command | seconds (median) | all runs | peak RSS (MiB) | client CPU s | machine CPU s |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for name, v in res.items():
        all_runs = ", ".join(f"{x['seconds']:.1f}" for x in r.get("runs", {}).get(name, [v]))
        lines.append(
            f"| `{name}` | {v['seconds']:.2f} | {all_runs} | {v['rss_mib']:.0f} | "
            f"{v.get('client_cpu_s', 0):.1f} | {v.get('machine_cpu_s', 0):.1f} |"
        )
    per_round = {
        what: [
            round(m["seconds"] / p["seconds"], 2)
            for m, p in zip(
                r.get("runs", {}).get(mine, []), r.get("runs", {}).get(peer, []), strict=False
            )
        ]
        for what, mine, peer in (
            ("dump", "moodump dump", "pg_dump -Fd -j 2"),
            ("restore", "moodump restore", "pg_restore -j 2"),
        )
    }
    lines += [
        "",
        "| ratio (moodump / peer) | of the medians | median of the rounds | each round | target |",
        "|---|---:|---:|---|---:|",
        f"| dump vs `pg_dump -Fd -j 2` | {r['ratios']['dump']:.2f} | "
        f"{_mid(per_round['dump'])} | {', '.join(map(str, per_round['dump']))} | ≤ 0.6 |",
        f"| restore vs `pg_restore -j 2` | {r['ratios']['restore']:.2f} | "
        f"{_mid(per_round['restore'])} | {', '.join(map(str, per_round['restore']))} | ≤ 0.9 |",
        f"| moodump dump peak RSS | {res['moodump dump']['rss_mib']:.0f} MiB | | | ≤ 150 MiB |",
        f"| moodump restore peak RSS | {res['moodump restore']['rss_mib']:.0f} MiB | | | ≤ 150 MiB |",
        "",
        f"Sizes: moodump {r['sizes']['moodump'] / 2**20:.1f} MiB (isal gzip level 1), "
        f"`pg_dump -Fd` {r['sizes']['pg_dump -Fd'] / 2**20:.1f} MiB (its default gzip). "
        + (
            "Every table of moodump's restore has the source's row count."
            if r.get("restored_equal")
            else "**moodump's restore differs from the source in row counts.**"
        ),
        "",
        "## Reading the figures",
        "",
        "- " + verdict(r),
        "- Where the dump's time goes: `pg_dump -Fd` compresses each table with zlib at its "
        "default level in the worker that reads it, so the biggest table (the logstore, 5 M "
        "rows) is one COPY and one zlib stream on one core; moodump reads a big table as "
        "primary-key ranges over both connections and compresses with isal (level 1), "
        "several times cheaper per byte, at the cost of a ~10 % bigger backup. moodump also "
        "reads each keyed table `ORDER BY` its key and digests every row (XXH3) so that a "
        "restore can be proven, which pg_dump does not.",
        "- Where the restore's time goes: the server's work (COPY, then the indexes: the "
        "logstore's 9 indexes alone are ~35 s of CPU) is the same for both tools and "
        "dominates; both keep the two cores busy (the machine CPU column is about twice the "
        "seconds), so on a machine where the server shares the client's two cores neither "
        "tool can be much faster than the other. moodump's client costs less CPU than "
        "pg_restore's. Its sessions set `max_parallel_maintenance_workers = 0` (with two "
        "sessions already on two cores, a CREATE INDEX's parallel workers only add "
        "contention), load the files of one table one after the other while other tables "
        "wait (two COPY into one table cost the server ~50 % more CPU), never take a job "
        "that would wait for a lock the other session holds (an `ADD PRIMARY KEY` and a "
        "`CREATE INDEX` on one table exclude each other: before this rule the sessions "
        "spent 11 % of a worker's time in such waits), run a small "
        "table's indexes with their progress rows in one round trip, and store values "
        "over ~2 kB with lz4 rather than the server's default pglz (`--toast-compression "
        "auto`: the sample's `backup_controllers`, 6,000 rows of 28 kB, 2 s of server CPU "
        "instead of 9 s; pg_restore uses the server's default). It also checks every "
        "file's sha256 (beside the pre-data script, when the restore creates the database) "
        "and commits a progress row per file (what makes "
        "`--resume` exact), which pg_restore does not.",
        "- Measured and left (server-side levers for the restore, on the same sample): the "
        "logstore's 9 index builds cost 40-47 s of one core on their own whatever "
        "`maintenance_work_mem` is (4 MB, 16 MB, 64 MB, 256 MB, 1 GB; in a restore, 256 MB and "
        "1 GB were slower), and the primary key over ids already in order takes 2.2-2.5 s of "
        "it: most of an index build is the scan of the 1.2 GB heap, once per index, which no "
        "client setting avoids. Switching autovacuum off for the whole restore changed "
        "nothing measurable (three pairs of runs, 60-71 s off against 59-65 s on). COPY "
        "FREEZE and smaller `maintenance_work_mem` were measured before (no gain); the logstore "
        "loaded with COPY FREEZE and indexed twice dirtied as much page cache as without it "
        "(3.19 GiB against 3.21 GiB), and `wal_compression = lz4` (a superuser's session setting) gave medians of "
        "58.9 s against 59.4 s over four pairs of restores: neither is a measurable gain. Where the CPU "
        "goes and the floor it sets under the restore target (the same server work for both "
        "tools; a binary COPY costs the client more to convert than it saves the server): "
        "[benchmarks-postgres-floor.md](benchmarks-postgres-floor.md).",
        "- Runs on this shared 2-core machine (a virtual machine) vary by several seconds, "
        "and so does the CPU the same command costs from one round to the next (the same "
        "command's machine CPU differs by up to a third between rounds); the ratio of the "
        "medians is what is compared, the median of the per-round ratios (each round's two "
        "commands ran minutes apart on the same machine state) is shown beside it, and all "
        "runs are listed.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
