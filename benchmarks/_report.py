# ruff: noqa: RUF001  (multiplication signs and dashes in the rendered report are intended)
"""Render docs/benchmarks.md and the plots from the results JSON (no measuring here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

MB = 1_000_000

# (key, text, moodump row ids (first present wins), peer row ids (fastest present wins), limit)
RATIO_TARGETS: list[tuple[str, str, list[str], list[str], float]] = [
    ("dump-vs-mydumper-c", "dump (gzip, 2 workers) ≤ 0.5× mydumper -t 2 -c",
     ["moodump-gzip-t2"], ["mydumper-t2-c", "mydumper-t2-r-c"], 0.5),
    ("dump-vs-gzip6", "dump (gzip, 2 workers) ≤ 0.3× mariadb-dump | gzip -6",
     ["moodump-gzip-t2"], ["mariadb-dump-gzip6"], 0.3),
    ("dump-vs-floor", "dump (gzip, 2 workers) ≤ 1.2× uncompressed mydumper -t 2",
     ["moodump-gzip-t2"], ["mydumper-t2", "mydumper-t2-r"], 1.2),
    ("restore-vs-myloader", "restore (2 threads) ≤ 0.6× myloader -t 2",
     ["restore-moodump"], ["restore-myloader"], 0.6),
    ("verify-vs-restore", "full verify (by restore) ≤ 1.1× restore",
     ["verify-restore"], ["restore-moodump"], 1.1),
]  # fmt: skip
RSS_LIMIT = 120 * MB
SIZE_LIMIT = 1.15


def _rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in data.get("rows", [])}


def _ok(r: dict[str, Any] | None) -> bool:
    return r is not None and r.get("status") == "ok"


def _c(text: object) -> str:
    """A markdown table cell: a '|' inside it must be escaped."""
    return str(text).replace("|", "\\|")


def _f(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{x:,.{digits}f}"


def _mb(n: int | None) -> str:
    return "–" if not n else f"{n / MB:,.1f}"


def targets(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every target of issue 5 with its measured value and MET / NOT MET."""
    rows = _rows(data)
    out: list[dict[str, Any]] = []
    for key, text, mine, peers, limit in RATIO_TARGETS:
        m = next((rows[i] for i in mine if _ok(rows.get(i))), None)
        cands = [rows[i] for i in peers if _ok(rows.get(i))]
        p = min(cands, key=lambda r: r["wall_s"]) if cands else None
        t: dict[str, Any] = {"key": key, "target": text, "limit": limit}
        if m is None or p is None:
            t.update(status="n/a", detail="row not measured")
        else:
            ratio = m["wall_s"] / p["wall_s"]
            t.update(
                moodump=f"{m['wall_s']:.2f} s ({m['label']})",
                peer=f"{p['wall_s']:.2f} s ({p['label']})",
                ratio=round(ratio, 3),
                status="MET" if ratio <= limit else "NOT MET",
                contended=bool(m.get("contended") or p.get("contended")),
            )
        out.append(t)
    for rid, text in (
        ("moodump-gzip-t2", "peak RSS ≤ 120 MB, dump gzip, 2 workers"),
        ("moodump-zstd-t2", "peak RSS ≤ 120 MB, dump zstd, 2 workers"),
        ("memory-16mb-row", "peak RSS ≤ 120 MB, dump gzip, 2 workers, with a 16 MiB row"),
    ):
        r = rows.get(rid)
        t = {"key": "rss-" + rid, "target": text, "limit": RSS_LIMIT / MB}
        if not _ok(r):
            t.update(status="n/a", detail="row not measured" if r is None else r.get("reason", ""))
        else:
            assert r is not None
            rss = r["peak_rss_bytes"]
            t.update(
                moodump=f"{rss / MB:.1f} MB", peer="–", ratio=round(rss / RSS_LIMIT, 3),
                status="MET" if rss <= RSS_LIMIT else "NOT MET", contended=False,
            )  # fmt: skip
        out.append(t)
    m, p = rows.get("moodump-gzip-t2"), rows.get("mariadb-dump-gzip6")
    t = {
        "key": "size-vs-gzip6",
        "target": "gzip output ≤ 1.15× gzip -6's size",
        "limit": SIZE_LIMIT,
    }
    if _ok(m) and _ok(p) and m and p and m.get("output_bytes") and p.get("output_bytes"):
        ratio = m["output_bytes"] / p["output_bytes"]
        t.update(
            moodump=f"{m['output_bytes']:,} B", peer=f"{p['output_bytes']:,} B (mariadb-dump | gzip -6)",
            ratio=round(ratio, 3), status="MET" if ratio <= SIZE_LIMIT else "NOT MET", contended=False,
        )  # fmt: skip
    else:
        t.update(status="n/a", detail="row not measured")
    out.append(t)
    return out


def _info_ratios(data: dict[str, Any]) -> list[tuple[str, str, str, float]]:
    rows = _rows(data)
    pairs = [
        ("moodump-gzip-t2", "mariadb-dump-zstd3"),
        ("moodump-zstd-t2", "mariadb-dump-zstd3"),
        ("moodump-gzip-t2", "mariadb-dump-pigz2"),
        ("moodump-zstd-t2", "mydumper-t2-c"),
        ("moodump-gzip-t1", "mariadb-dump-gzip6"),
        ("moodump-gzip-t4", "mydumper-t2-c"),
        ("restore-moodump", "restore-mariadb"),
        ("verify-restore", "restore-myloader"),
    ]
    out = []
    for a, b in pairs:
        ra, rb = rows.get(a), rows.get(b)
        if _ok(ra) and _ok(rb) and ra and rb:
            out.append((ra["label"], rb["label"], "wall", ra["wall_s"] / rb["wall_s"]))
    return out


def _machine(data: dict[str, Any]) -> list[str]:
    m = data.get("machine", {})
    pk = m.get("python_packages", {})
    tools = m.get("tools", {})
    srv = data.get("server", {})
    lines = [
        "| | |",
        "|---|---|",
        f"| CPU | {m.get('nproc')} × {m.get('cpu', '?')} |",
        f"| memory | {m.get('memory_gib')} GiB |",
        f"| OS / kernel | {m.get('os', '?')} / {m.get('kernel', '?')} |",
        f"| MariaDB server | {srv.get('version', '?')} (own instance, Unix socket) |",
        f"| server settings | {', '.join(f'{k}={v}' if k != 'tmpdir' else 'tmpdir=<work>/server/tmp' for k, v in srv.get('settings', {}).items())}, skip-log-bin |",
        f"| Python | {m.get('python')} |",
        f"| moodump | {pk.get('moodump')} (commit {m.get('moodump_commit', '?')}"
        + (", with uncommitted changes in src/" if m.get("moodump_src_modified") else "")
        + ") |",
        f"| mysql-connector-python | {pk.get('mysql-connector-python')} (C extension loaded: {m.get('connector_c_extension')}) |",
        f"| isal / zstandard | {pk.get('isal')} / {pk.get('zstandard')} |",
    ]
    for name in ("mariadb-dump", "mydumper", "myloader", "gzip", "pigz", "zstd"):
        lines.append(f"| {name} | {tools.get(name) or 'not installed'} |")
    return lines


def _dataset(data: dict[str, Any]) -> list[str]:
    ds = data.get("dataset", {})
    if not ds:
        return []
    sizes: dict[str, list[int]] = ds.get("table_sizes", {})
    rows: dict[str, int] = ds.get("table_rows", {})
    big = sorted(sizes, key=lambda n: -sum(sizes[n]))[:8]
    out = [
        f"Database `{ds.get('database')}` at scale {ds.get('scale')}: {ds.get('tables')} tables of "
        f"Moodle's schema ({ds.get('tables_with_rows')} with rows), {ds.get('rows', 0):,} rows, "
        f"{_mb(ds.get('data_length'))} MB of InnoDB data and {_mb(ds.get('index_length'))} MB of "
        f"indexes; generated in {ds.get('generate_s')} s by `moodump.demo.sample` "
        f"(backup_controllers as LONGBLOB)."
        + (
            f" mariadb-dump's text of it is {ds['dump_text_bytes']:,} bytes ('dump-eq MB/s' below divides this by the wall time)."
            if ds.get("dump_text_bytes") else ""
        ),
        "",
        "| table | rows | data MB | index MB |",
        "|---|---:|---:|---:|",
    ]  # fmt: skip
    for n in big:
        out.append(f"| {n} | {rows.get(n, 0):,} | {_mb(sizes[n][0])} | {_mb(sizes[n][1])} |")
    return out


def _abs_table(data: dict[str, Any], groups: tuple[str, ...]) -> list[str]:
    ds = data.get("dataset", {})
    text = ds.get("dump_text_bytes")
    gz6 = _rows(data).get("mariadb-dump-gzip6", {}).get("output_bytes")
    out = [
        "| row | what | wall s | dump-eq MB/s | client CPU s (user+sys) | server CPU s | other CPU s | peak RSS MB | output MB | size / gzip -6 | check |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in data.get("rows", []):
        if r.get("group") not in groups:
            continue
        if r.get("status") == "skipped":
            out.append(
                f"| {r['id']} | {_c(r['label'])} | skipped: {_c(r.get('reason', ''))} | | | | | | | | |"
            )
            continue
        if "wall_s" not in r:
            out.append(
                f"| {r['id']} | {_c(r['label'])} | FAILED: {_c(r.get('reason', ''))} | | | | | | | | |"
            )
            continue
        walls = r.get("all_wall_s") or [r["wall_s"]]
        wall = _f(r["wall_s"])
        if len(walls) > 1:
            wall += " (runs: " + " / ".join(f"{w:.1f}" for w in walls) + ")"
        if r.get("contended"):
            wall += " (contended)"
        rate = (
            _f(text / MB / r["wall_s"], 1)
            if text and r.get("group") in ("dump", "restore")
            else "–"
        )
        cpu = f"{r['client_cpu_s']:.2f} ({r['client_user_s']:.1f}+{r['client_sys_s']:.1f})"
        rss = _mb(r.get("peak_rss_bytes"))
        if r.get("rss_sum_bytes", 0) > r.get("peak_rss_bytes", 0) * 1.01:
            rss += f" (sum {_mb(r['rss_sum_bytes'])})"
        size = _mb(r.get("output_bytes")) if r.get("group") in ("dump", "memory") else "–"
        rel = (
            _f(r["output_bytes"] / gz6, 3)
            if gz6 and r.get("output_bytes") and r.get("group") == "dump"
            else "–"
        )
        chk = r.get("check") or {}
        if r.get("status") == "failed":
            check = "FAILED: " + str(r.get("reason", ""))[:120]
        elif chk.get("method", "").startswith("CHECKSUM"):
            check = f"{chk.get('tables')} tables match"
        elif "passed" in chk:
            check = (
                f"PASS ({chk.get('tables_checked')} tables, {chk.get('rows_checked') or 0:,} rows)"
            )
        else:
            check = "–"
        out.append(
            f"| {r['id']} | {_c(r['label'])} | {wall} | {rate} | {cpu} | {_f(r['server_cpu_s'])} | "
            f"{_f(r['other_cpu_s'])} | {rss} | {size} | {rel} | {_c(check)} |"
        )
    return out


def _time_goes(data: dict[str, Any]) -> list[str]:
    rows = _rows(data)
    ncpu = data.get("machine", {}).get("nproc", 2)
    out = [
        f"CPU budget = wall × {ncpu} cores. 'idle' is the part of the budget nobody used "
        "(waiting on the disk, on locks, or on a single busy thread).",
        "",
        "| row | wall s | client CPU | server CPU | other | idle |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for rid in ("moodump-gzip-t1", "moodump-gzip-t2", "moodump-gzip-t4", "moodump-zstd-t2",
                "mydumper-t2", "mydumper-t2-c", "mariadb-dump-gzip6",
                "restore-moodump", "restore-myloader", "verify-restore", "verify-offline"):  # fmt: skip
        r = rows.get(rid)
        if not _ok(r) or r is None:
            continue
        budget = r["wall_s"] * ncpu
        c, s, o = r["client_cpu_s"], r["server_cpu_s"], r["other_cpu_s"]
        idle = max(0.0, budget - c - s - o)

        def pc(x: float, budget: float = budget) -> str:
            return f"{x:.1f} s ({100 * x / budget:.0f} %)"

        out.append(
            f"| {_c(r['label'])} | {r['wall_s']:.2f} | {pc(c)} | {pc(s)} | {pc(o)} | {pc(idle)} |"
        )
    prof = data.get("profile")
    if prof:
        out += [
            "",
            f"**Profile of the client** (`{prof.get('command')}`, {prof.get('samples'):,} samples of "
            f"the moodump process's active threads; the profiled run took {prof.get('wall_s')} s wall, "
            f"{prof.get('client_cpu_s')} s client CPU, {prof.get('server_cpu_s')} s server CPU):",
            "",
            "| where (leaf-first classification) | share of all samples | share of busy samples |",
            "|---|---:|---:|",
        ]
        out += [
            f"| {c['name']} | {c['percent']} % | "
            + ("–" if c.get("percent_busy") is None else f"{c['percent_busy']} %")
            + " |"
            for c in prof.get("categories", [])
        ]
        base = rows.get("moodump-gzip-t2")
        if _ok(base) and base is not None:
            cpu = base["client_cpu_s"]
            parts = [
                f"{c['name'].split(' (')[0]} ≈ {cpu * c['percent_busy'] / 100:.1f} s"
                for c in prof.get("categories", [])
                if c.get("percent_busy")
            ]
            out += [
                "",
                f"Applied to the unprofiled run's {cpu:.1f} client CPU-s (moodump dump --codec gzip "
                f"--threads 2): " + "; ".join(parts) + ".",
            ]
        out += ["", "Busy samples only (percent of all samples):", ""]
        out += ["| innermost Python function | share |", "|---|---:|"]
        out += [f"| `{c['name']}` | {c['percent']} % |" for c in prof.get("python", [])[:12]]
        out += ["", "| leaf native frame (library) | share |", "|---|---:|"]
        out += [f"| `{c['name']}` | {c['percent']} % |" for c in prof.get("native", [])[:10]]
    return out


def _scaling(data: dict[str, Any]) -> list[str]:
    sc = data.get("scaling")
    if not sc:
        return []
    out = [
        f"Measured {sc.get('generated_at', '')} (`python benchmarks/run.py --scaling --scales "
        f"{','.join(f'{s:g}' for s in sc['scales'])}`), wall seconds of a whole-database dump:",
        "",
    ]
    tools = []
    for p in sc["points"]:
        key = (p["tool"], p["workers"])
        if key not in tools:
            tools.append(key)
    out.append("| scale | rows | data MB | " + " | ".join(f"{t} ({w} w)" for t, w in tools) + " |")
    out.append("|---:|---:|---:|" + "---:|" * len(tools))
    for s in sc["scales"]:
        ds = sc.get("datasets", {}).get(f"{s:g}", {})
        cells = []
        for t, w in tools:
            p = next(
                (
                    p
                    for p in sc["points"]
                    if p["scale"] == s and p["tool"] == t and p["workers"] == w
                ),
                None,
            )
            if p is None or p.get("wall_s") is None:
                cells.append("–")
            else:
                cells.append(f"{p['wall_s']:.2f}" + (" (c)" if p.get("contended") else ""))
        out.append(
            f"| {s:g} | {ds.get('rows', 0):,} | {_mb(ds.get('data_length'))} | "
            + " | ".join(cells)
            + " |"
        )
    pts = [p for p in sc["points"] if p["tool"] == "moodump gzip" and p.get("wall_s")]
    lines = []
    for w in sc["workers"]:
        ps = sorted((p for p in pts if p["workers"] == w), key=lambda p: p["scale"])
        if len(ps) >= 2:
            a, b = ps[0], ps[-1]
            per_a = a["wall_s"] / a["scale"]
            per_b = b["wall_s"] / b["scale"]
            lines.append(
                f"{w} worker(s): {per_a:.1f} s per scale unit at scale {a['scale']:g}, "
                f"{per_b:.1f} s at scale {b['scale']:g} (1.0 would be perfectly linear: {per_b / per_a:.2f})"
            )
    if lines:
        out += ["", "Linearity (seconds per unit of scale, smallest vs largest scale):", ""]
        out += ["- " + x for x in lines]
    out += [
        "",
        "(c) = contended: other processes used CPU during the run.",
        "",
        "![scaling](scaling.png)",
    ]
    return out


def render(data: dict[str, Any], has_plot: bool = True) -> str:
    ts = targets(data)
    cmd = data.get("command", "python benchmarks/run.py")
    lines = [
        "# Benchmarks: moodump against mariadb-dump, mydumper and myloader",
        "",
        "<!-- generated by benchmarks/run.py from docs/benchmarks.json; do not edit by hand -->",
        "",
        f"Measured {data.get('generated_at', '?')} with `{cmd}`, on one machine, in one run on the "
        "same data (rows re-run later say so). Regenerate this page from the JSON with "
        "`python benchmarks/run.py --report-only`; re-measure with the command above "
        "(see [benchmarks/README.md](../benchmarks/README.md)).",
        "",
        "## Targets (issue 5)",
        "",
        "| target | moodump | peer | ratio | limit | result |",
        "|---|---|---|---:|---:|---|",
    ]
    for t in ts:
        status = t["status"] + (" (contended)" if t.get("contended") else "")
        lines.append(
            f"| {_c(t['target'])} | {_c(t.get('moodump', '–'))} | {_c(t.get('peer', '–'))} | "
            f"{_f(t.get('ratio'), 3)} | {t['limit']:g} | **{status}**"
            + (f" ({_c(t['detail'])})" if t.get("detail") else "")
            + " |"
        )
    info = _info_ratios(data)
    if info:
        lines += ["", "Other ratios from the same run (wall time, moodump / peer):", ""]
        lines += [f"- {a} / {b}: {x:.2f}×" for a, b, _k, x in info]
    lines += ["", "## Machine", "", *_machine(data)]
    ds = _dataset(data)
    if ds:
        lines += ["", "## Data", "", *ds]
    lines += [
        "",
        "## Results",
        "",
        "Wall time; client CPU = user+sys of every process of the command (pipelines: all "
        "stages); server CPU = mariadbd's utime+stime; other = CPU used by anything else on "
        "the machine meanwhile (a run is *contended* when it exceeds max(2 s, 3 % of the "
        "machine)); peak RSS = largest ru_maxrss among the command's processes ('sum' adds a "
        "pipeline's processes). Dump rows ran with a warm buffer pool; the best uncontended "
        "of the runs is shown. Every restore is checked with CHECKSUM TABLE of every table "
        "against the source; verify rows show moodump's own verdict.",
        "",
        "### Dumps",
        "",
    ]
    lines += _abs_table(data, ("dump",))
    lines += ["", "### Restores and verification", ""]
    lines += _abs_table(data, ("restore", "verify"))
    lines += ["", "### Memory: a 16 MiB row", ""]
    lines += _abs_table(data, ("memory",))
    if has_plot:
        lines += ["", "![benchmarks](benchmarks.png)"]
    lines += ["", "## Where the time goes", "", *_time_goes(data)]
    sc = _scaling(data)
    if sc:
        lines += ["", "## Scaling", "", *sc]
    notes = data.get("notes")
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def plot_main(data: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups = [
        ("Dumps (whole database)", ("dump",)),
        ("Restores and verification", ("restore", "verify")),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(14, 10), gridspec_kw={"width_ratios": [1, 1]})
    for gi, (title, gs) in enumerate(groups):
        rows = [r for r in data.get("rows", []) if r.get("group") in gs and r.get("status") == "ok"]
        rows.sort(key=lambda r: r["wall_s"], reverse=True)
        labels = [r["label"] for r in rows]
        ypos = list(range(len(rows)))
        colors = ["#2a7ab9" if "moodump" in r["label"] else "#9a9a9a" for r in rows]
        ax = axes[gi][0]
        ax.barh(ypos, [r["wall_s"] for r in rows], color=colors)
        for y, r in zip(ypos, rows, strict=True):
            ax.text(r["wall_s"], y, f" {r['wall_s']:.1f}", va="center", fontsize=8)
        ax.set_yticks(ypos, labels, fontsize=8)
        ax.set_xlabel("wall time, s (lower is better)")
        ax.set_title(title + ": wall time")
        ax2 = axes[gi][1]
        cl = [r["client_cpu_s"] for r in rows]
        sv = [r["server_cpu_s"] for r in rows]
        ot = [r["other_cpu_s"] for r in rows]
        ax2.barh(ypos, cl, color="#2a7ab9", label="client CPU")
        ax2.barh(ypos, sv, left=cl, color="#e08a2c", label="server CPU")
        ax2.barh(
            ypos,
            ot,
            left=[a + b for a, b in zip(cl, sv, strict=True)],
            color="#c44",
            label="other CPU",
        )
        ax2.set_yticks(ypos, [""] * len(rows))
        ax2.set_xlabel("CPU seconds")
        ax2.set_title(title + ": where the CPU went")
        ax2.legend(fontsize=8, loc="upper right")
    fig.suptitle(
        f"moodump vs peers, scale {data.get('scale')} ({data.get('machine', {}).get('nproc')} cores)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def plot_scaling(data: dict[str, Any], path: Path) -> bool:
    sc = data.get("scaling")
    if not sc:
        return False
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 5))
    keys: list[tuple[str, int]] = []
    for p in sc["points"]:
        if (p["tool"], p["workers"]) not in keys:
            keys.append((p["tool"], p["workers"]))
    for tool, w in keys:
        ps = sorted(
            (
                p
                for p in sc["points"]
                if p["tool"] == tool and p["workers"] == w and p.get("wall_s")
            ),
            key=lambda p: p["scale"],
        )
        if ps:
            style = "o-" if tool.startswith("moodump") else "s--"
            a1.plot(
                [p["scale"] for p in ps],
                [p["wall_s"] for p in ps],
                style,
                label=f"{tool}, {w} worker(s)",
            )
    a1.set_xlabel("scale (1 ≈ 2 GB of InnoDB data)")
    a1.set_ylabel("wall time, s")
    a1.set_title("Dump wall time against data size")
    a1.legend(fontsize=8)
    a1.grid(alpha=0.3)
    for s in sc["scales"]:
        ps = sorted(
            (
                p
                for p in sc["points"]
                if p["tool"] == "moodump gzip" and p["scale"] == s and p.get("wall_s")
            ),
            key=lambda p: p["workers"],
        )
        if ps:
            a2.plot(
                [p["workers"] for p in ps],
                [p["wall_s"] / s for p in ps],
                "o-",
                label=f"scale {s:g}",
            )
    a2.set_xlabel("workers (--threads)")
    a2.set_ylabel("wall time per unit of scale, s")
    a2.set_xticks(sc["workers"])
    a2.set_title("moodump dump (gzip): workers")
    a2.legend(fontsize=8)
    a2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


def write(data: dict[str, Any], md_path: Path, plots: bool = True) -> None:
    md_path.parent.mkdir(parents=True, exist_ok=True)
    has_plot = False
    if plots and data.get("rows"):
        has_plot = plot_main(data, md_path.with_suffix(".png"))
    if plots:
        plot_scaling(data, md_path.parent / "scaling.png")
    md_path.write_text(render(data, has_plot))
