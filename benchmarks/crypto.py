"""Throughput and peak memory of moodump's age encryption (moodump.crypto).

Usage::

    PYTHONPATH=src python benchmarks/crypto.py                 # 500 MB, ./bench-work
    PYTHONPATH=src python benchmarks/crypto.py --size-mb 100 --json out.json

Makes one plaintext file of ``--size-mb`` MB (a random 1 MiB block repeated: the cipher's
speed does not depend on content), then measures each way of encrypting and decrypting
it, each in a fresh child process and its peak RSS (``VmHWM``, reset after the imports) is its own. The
baseline row is pyrage's own ``encrypt_file``/``decrypt_file`` (Rust reads and writes,
no Python in the loop), the ceiling for moodump's streaming wrappers. Files are read
from the page cache (the file was just written): the numbers are CPU cost, not disk.
Results are printed as a Markdown table for docs/encryption.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

MODES = [
    ("encrypt_file", "encrypt", "moodump.crypto.encrypt_file (hashes both sides)"),
    ("open_encrypting", "encrypt", "open_encrypting writer, 1 MiB writes"),
    ("open_encrypting_reader", "encrypt", "open_encrypting_reader, 1 MiB reads"),
    ("pyrage_encrypt_file", "encrypt", "baseline: pyrage.encrypt_file"),
    ("decrypt_file", "decrypt", "moodump.crypto.decrypt_file (hashes both sides)"),
    ("open_decrypting", "decrypt", "open_decrypting reader, 1 MiB reads"),
    ("open_decrypting_gzip", "decrypt", "open_decrypting + HashingReader + gzip decompress"),
    ("pyrage_decrypt_file", "decrypt", "baseline: pyrage.decrypt_file"),
]


def _status_mib(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _reset_peak() -> None:
    """Reset VmHWM (the kernel's peak RSS) so the peak is the measured step's own."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass  # then the peak includes the imports; still an upper bound


def run_one(mode: str, work: Path) -> dict[str, float]:
    """Run one measurement in this process; returns seconds and RSS figures."""
    import pyrage

    from moodump.crypto import (
        HashingReader,
        decrypt_file,
        encrypt_file,
        load_identities,
        open_decrypting,
        open_encrypting,
        open_encrypting_reader,
        parse_recipients,
    )
    from moodump.crypto.keys import native_identities, native_recipients

    recipients = parse_recipients(work / "recipients.txt")
    identities = load_identities(work / "identity.txt")
    plain = work / ("plain.gz" if mode.endswith("gzip") else "plain.bin")
    cipher = work / ("cipher.gz.age" if mode.endswith("gzip") else "cipher.age")
    out = work / f"out-{mode}"
    out.unlink(missing_ok=True)
    _reset_peak()
    rss_start = _status_mib("VmRSS")
    t0 = time.perf_counter()
    if mode == "encrypt_file":
        encrypt_file(plain, out, recipients)
    elif mode == "open_encrypting":
        with open(plain, "rb") as src, open_encrypting(open(out, "wb"), recipients) as w:
            while block := src.read(1 << 20):
                w.write(block)
    elif mode == "open_encrypting_reader":
        with open_encrypting_reader(open(plain, "rb"), recipients) as r, open(out, "wb") as dst:
            while block := r.read(1 << 20):
                dst.write(block)
    elif mode == "pyrage_encrypt_file":
        pyrage.encrypt_file(str(plain), str(out), native_recipients(recipients))
    elif mode == "decrypt_file":
        decrypt_file(cipher, out, identities)
    elif mode == "open_decrypting":
        with open_decrypting(open(cipher, "rb"), identities) as r, open(out, "wb") as dst:
            while block := r.read(1 << 20):
                dst.write(block)
    elif mode == "open_decrypting_gzip":
        from isal import igzip

        plain_reader = HashingReader(open_decrypting(open(cipher, "rb"), identities))  # noqa: SIM115
        with igzip.IGzipFile(fileobj=plain_reader, mode="rb") as rows:
            while rows.read(1 << 20):
                pass
        plain_reader.finish()
        plain_reader.close()
    elif mode == "pyrage_decrypt_file":
        pyrage.decrypt_file(str(cipher), str(out), native_identities(identities))
    else:
        raise SystemExit(f"unknown mode {mode}")
    seconds = time.perf_counter() - t0
    out.unlink(missing_ok=True)
    return {"seconds": seconds, "rss_before_mib": rss_start, "peak_rss_mib": _status_mib("VmHWM")}


def prepare(work: Path, size_mb: int) -> None:
    """Key pair, plaintext, its gzip form and both ciphertexts (made once, reused)."""
    import pyrage
    from pyrage import x25519

    from moodump.compression import DataWriter, get_codec

    work.mkdir(parents=True, exist_ok=True)
    identity = x25519.Identity.generate()
    (work / "identity.txt").write_text(str(identity) + "\n")
    (work / "recipients.txt").write_text(str(identity.to_public()) + "\n")
    plain = work / "plain.bin"
    if not plain.exists() or plain.stat().st_size != size_mb << 20:
        block = os.urandom(1 << 20)
        with open(plain, "wb") as fh:
            for _ in range(size_mb):
                fh.write(block)
    gz = work / "plain.gz"
    if not gz.exists():
        # tab-separated text rows, compressed as a dump writes them (about 4:1)
        codec, level = get_codec("gzip")
        w = DataWriter(gz, codec, level)
        row = 0
        for _ in range(size_mb):
            w.write(
                b"".join(
                    b'%d\t%d\tmod_forum\tviewed\t{"discussionid":%d}\n' % (row + i, i % 997, i)
                    for i in range(24_000)
                )[: 1 << 20]
            )
            row += 24_000
        w.close()
    recipients = [identity.to_public()]
    pyrage.encrypt_file(str(plain), str(work / "cipher.age"), recipients)
    pyrage.encrypt_file(str(gz), str(work / "cipher.gz.age"), recipients)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size-mb", type=int, default=500)
    p.add_argument("--work-dir", type=Path, default=Path("bench-work/crypto"))
    p.add_argument("--repeat", type=int, default=2, help="best of N runs per mode")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--one", help=argparse.SUPPRESS)  # child process: one mode
    args = p.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.work_dir)))
        return
    prepare(args.work_dir, args.size_mb)
    sizes = {
        "encrypt": (args.work_dir / "plain.bin").stat().st_size,
        "decrypt": (args.work_dir / "plain.bin").stat().st_size,
    }
    gz_size = (args.work_dir / "plain.gz").stat().st_size
    results = []
    for mode, direction, label in MODES:
        runs = []
        for _ in range(args.repeat):
            proc = subprocess.run(
                [sys.executable, __file__, "--one", mode, "--work-dir", str(args.work_dir)],
                check=True,
                capture_output=True,
                text=True,
            )
            runs.append(json.loads(proc.stdout))
        best = min(runs, key=lambda r: r["seconds"])
        size = gz_size if mode.endswith("gzip") else sizes[direction]
        results.append(
            {
                "mode": mode,
                "label": label,
                "bytes": size,
                "seconds": round(best["seconds"], 3),
                "mb_per_s": round(size / best["seconds"] / 1e6, 1),
                "peak_rss_mib": round(max(r["peak_rss_mib"] for r in runs), 1),
                "rss_before_mib": round(best["rss_before_mib"], 1),
            }
        )
    print(
        f"| way ({args.size_mb} MB plaintext; gzip row: {gz_size / 1e6:.0f} MB compressed) "
        "| MB/s | peak RSS (MiB) | RSS before (MiB) |"
    )
    print("|---|---:|---:|---:|")
    for r in results:
        print(f"| {r['label']} | {r['mb_per_s']} | {r['peak_rss_mib']} | {r['rss_before_mib']} |")
    if args.json:
        args.json.write_text(json.dumps({"size_mb": args.size_mb, "results": results}, indent=1))


if __name__ == "__main__":
    main()
