"""Regenerate src/moodump/demo/sample/moodle_schema.json from Moodle's XMLDB files.

Usage::

    python benchmarks/build_moodle_schema.py [MOODLE_TREE] [--check]

MOODLE_TREE is a Moodle code tree or the copy of its ``install.xml`` files in
``../shared/datasets/moodle-schema`` (the default: beside the repository). The output has
one table per line so that a schema change shows as a readable diff. ``--check`` only
compares and exits 1 when the shipped file is out of date.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from moodump.demo.sample.xmldb import read_tree

REPO = Path(__file__).resolve().parent.parent
OUTPUT = REPO / "src" / "moodump" / "demo" / "sample" / "moodle_schema.json"
VERSION = "2023112400.00"  # of the tree in ../shared/datasets/moodle-schema (its README)
RELEASE = "4.4dev (Build: 20231124)"


def default_tree() -> Path:
    for base in (REPO.parent / "shared", REPO / ".." / "shared"):
        candidate = base / "datasets" / "moodle-schema"
        if candidate.is_dir():
            return candidate.resolve()
    return REPO.parent / "shared" / "datasets" / "moodle-schema"


def render(schema: dict[str, Any], version: str = VERSION, release: str = RELEASE) -> str:
    """The file's text: stable key order, one table per line."""

    def dump(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))

    source = {
        "project": "Moodle",
        "version": version,
        "release": release,
        "license": "GPL-3.0-or-later",
        "from": "db/install.xml files of the Moodle tree (see src/moodump/demo/sample/README.md)",
    }
    head = {"format": schema["format"], "source": source, "files": schema["files"]}
    lines = ["{", dump(head)[1:-1] + ",", '"tables":[']
    rows = [dump(t) for t in schema["tables"]]
    lines.append(",\n".join(rows))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree", nargs="?", type=Path, default=default_tree())
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if stale")
    parser.add_argument("--moodle-version", default=VERSION, help="$version of the tree")
    parser.add_argument("--moodle-release", default=RELEASE, help="$release of the tree")
    args = parser.parse_args(argv)
    text = render(read_tree(args.tree), args.moodle_version, args.moodle_release)
    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current != text:
            print(f"{args.output} is out of date with {args.tree}", file=sys.stderr)
            return 1
        print(f"{args.output} matches {args.tree}")
        return 0
    args.output.write_text(text, encoding="utf-8")
    n = len(json.loads(text)["tables"])
    print(f"wrote {args.output} ({n} tables, {len(text.encode())} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
