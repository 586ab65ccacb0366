"""Read Moodle's XMLDB table definitions (``db/install.xml``) into plain data.

The shipped ``moodle_schema.json.gz`` is produced from a Moodle code tree by
``benchmarks/build_moodle_schema.py``, which calls :func:`read_tree`; the test suite calls
it again to prove the shipped file still matches the XML.

The result is JSON-ready and ordered the way Moodle installs it: ``lib/db/install.xml``
(core) first, then every other file by path, tables in file order. The order matters for
index names: Moodle de-duplicates generated names across the whole installation run.

Each table is ``{"name", "file", "comment", "fields", "keys", "indexes"}`` where

- a field is ``[name, type, length, decimals, notnull, sequence, default]``
  (``type`` is the XMLDB type: int, char, text, number, float, binary, datetime; ``length``
  and ``decimals`` are ints or None; ``default`` is the XMLDB string or None);
- a key is ``[name, type, fields, reftable, reffields]`` (type primary, unique, foreign,
  foreign-unique);
- an index is ``[name, unique, fields]``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from moodump.errors import ConfigError

CORE_FILE = "lib/db/install.xml"


def _fields_list(text: str | None) -> list[str]:
    return [f.strip() for f in (text or "").split(",") if f.strip()]


def _opt_int(text: str | None) -> int | None:
    return int(text) if text not in (None, "") else None


def read_install_xml(path: Path, rel: str) -> list[dict[str, Any]]:
    """Parse one ``install.xml`` into table dicts (see the module docstring)."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as exc:
        raise ConfigError(
            f"cannot read XMLDB file {path}: {exc}", hint="point at a Moodle code tree"
        ) from exc
    tables: list[dict[str, Any]] = []
    for t in root.iter("TABLE"):
        fields = []
        for f in t.iter("FIELD"):
            a = f.attrib
            fields.append(
                [
                    a["NAME"],
                    a["TYPE"],
                    _opt_int(a.get("LENGTH")),
                    _opt_int(a.get("DECIMALS")),
                    a.get("NOTNULL") == "true",
                    a.get("SEQUENCE") == "true",
                    a.get("DEFAULT"),
                ]
            )
        keys = []
        for k in t.iter("KEY"):
            a = k.attrib
            keys.append(
                [
                    a["NAME"],
                    a["TYPE"],
                    _fields_list(a.get("FIELDS")),
                    a.get("REFTABLE"),
                    _fields_list(a.get("REFFIELDS")) or None,
                ]
            )
        indexes = []
        for i in t.iter("INDEX"):
            a = i.attrib
            indexes.append([a["NAME"], a.get("UNIQUE") == "true", _fields_list(a.get("FIELDS"))])
        tables.append(
            {
                "name": t.attrib["NAME"],
                "file": rel,
                "comment": t.attrib.get("COMMENT", ""),
                "fields": fields,
                "keys": keys,
                "indexes": indexes,
            }
        )
    return tables


def install_files(root: Path) -> list[str]:
    """Relative paths of every ``db/install.xml`` under ``root``, core first, then by path.

    Test fixtures (anything under a ``tests`` directory) are not part of the schema.
    """
    rels = [
        p.relative_to(root).as_posix()
        for p in root.rglob("install.xml")
        if p.parent.name == "db" and "tests" not in p.relative_to(root).parts
    ]
    return sorted(rels, key=lambda r: (r != CORE_FILE, r))


def read_tree(root: Path) -> dict[str, Any]:
    """Read every ``install.xml`` below ``root`` (a Moodle tree or the dataset copy).

    Returns ``{"format": 1, "files": [...], "tables": [...]}``.
    """
    files = install_files(root)
    if not files:
        raise ConfigError(
            f"no install.xml files under {root}", hint="point at a Moodle code tree (or its copy)"
        )
    tables: list[dict[str, Any]] = []
    for rel in files:
        tables.extend(read_install_xml(root / rel, rel))
    return {"format": 1, "files": files, "tables": tables}
