"""Disaster recovery from off-site (issue 12), end to end, as processes, on real parts:
the test MariaDB, SeaweedFS (a real S3 server that checks signatures) and the moodump
CLI and backup.sh driven by an unchanged old backup.conf plus the old S3_* variables.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pyrage import x25519

import rig_s3
from moodump.config import host_env_prefix
from moodump.db import ConnSettings, connect
from moodump.db.connection import quote_ident
from moodump.storage import S3Backend
from test_cli_run import SCRIPT, Deployment
from test_cli_run import account as account
from test_cli_run import deployment as deployment

pytestmark = [pytest.mark.db, pytest.mark.storage]

MARKER = "PLAINTEXT-MARKER-4f1c-grade-of-a-student"


@pytest.fixture(scope="module")
def s3() -> rig_s3.SeaweedS3:
    try:
        return rig_s3.shared()
    except RuntimeError as exc:  # a required part of the rig: fail, never skip
        pytest.fail(f"SeaweedFS (the S3 server of the tests) did not start: {exc}")


def with_s3(dep: Deployment, s3: rig_s3.SeaweedS3, **extra: str) -> tuple[str, str]:
    """The old container's S3 variables (plus ``extra``) in the deployment's environment;
    returns (bucket, prefix)."""
    bucket = s3.bucket("moodle-dr")
    prefix = rig_s3.unique("site-")
    dep.env.update(
        {
            "S3_ENDPOINT": s3.endpoint,
            "S3_USER": rig_s3.ACCESS_KEY,
            "S3_PASSWORD": rig_s3.SECRET_KEY,
            "S3_BUCKET": bucket,
            "S3_PREFIX": prefix,
            **extra,
        }
    )
    return bucket, prefix


def objects(s3: rig_s3.SeaweedS3, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object below ``prefix``, as stored (raw bytes, no decompression)."""
    backend = S3Backend(s3.settings(bucket, prefix=prefix))
    try:
        return {o.key: backend.read_bytes(o.key) for o in backend.list("")}
    finally:
        backend.close()


def checksums(settings: ConnSettings, db: str) -> dict[str, Any]:
    """CHECKSUM TABLE ... EXTENDED of every base table of ``db``."""
    with connect(settings) as c:
        q = f"SHOW FULL TABLES FROM {quote_ident(db)} WHERE Table_type='BASE TABLE'"
        names = [bytes(r[0] or b"").decode() for r in c.query(q)]
        assert names, f"{db} has no tables"
        return {
            t: c.query(f"CHECKSUM TABLE {quote_ident(db)}.{quote_ident(t)} EXTENDED")[0][1]
            for t in names
        }


def drop(settings: ConnSettings, db: str) -> None:
    with connect(settings) as c:
        c.execute(f"DROP DATABASE IF EXISTS {quote_ident(db)}")


def root_args(settings: ConnSettings) -> list[str]:
    return ["-H", "127.0.0.1", "-P", str(settings.port), "-u", "root"]


def add_marker(settings: ConnSettings, db: str) -> None:
    with connect(settings) as c:
        c.execute(f"INSERT INTO {quote_ident(db)}.mdl_config VALUES (100000, 'marker', '{MARKER}')")


def test_old_conf_with_s3_uploads_and_the_bucket_restores_the_database(
    deployment: Deployment, s3: rig_s3.SeaweedS3, root_settings: ConnSettings
) -> None:
    dep = deployment
    bucket, prefix = with_s3(dep, s3)
    res = dep.run("moodump", "run", "--once", "--json")
    assert res.returncode == 0, res.stderr
    (db,) = json.loads(res.stdout)["databases"]
    assert db["offsite"]["ok"] is True
    (copy,) = db["offsite"]["copies"]
    assert copy["kind"] == "s3" and copy["ok"] and copy["bytes"] > 0
    assert db["offsite"]["duration_s"] >= 0  # upload time and bytes are in the report
    res = dep.run("bash", str(SCRIPT), "-1")  # the old CronJob's command
    assert res.returncode == 0, res.stderr
    names = {k.split("/", 1)[0] for k in objects(s3, bucket, prefix)}
    assert len(names) == 2 and all(n.startswith(dep.core + "_") for n in names)

    listing = dep.run("moodump", "list", "--offsite", "--json")
    assert listing.returncode == 0, listing.stderr
    (target,) = json.loads(listing.stdout)["offsite"]
    (group,) = target["databases"]
    urls = [b["path"] for b in group["backups"]]
    assert all(u.startswith(f"s3://{bucket}/{prefix}/") for u in urls)
    assert all(b["status"] == "DONE" and b["verified"] for b in group["backups"])

    # The cluster is gone: no local backups, only the bucket.
    source = dep.db
    shutil.rmtree(dep.root)
    for name, args in (
        ("dr_named", [urls[0]]),
        ("dr_latest", ["--latest", f"{dep.host}:{dep.port}/{dep.db}"]),
    ):
        drop(root_settings, name)
        res = dep.run("moodump", "restore", *args, *root_args(root_settings), "-d", name, "-q")
        assert res.returncode == 0, res.stderr
        assert checksums(root_settings, name) == checksums(root_settings, source)
        drop(root_settings, name)

    res = dep.run("moodump", "verify", "--offline", urls[0])
    assert res.returncode == 0 and "PASS (offline)" in res.stdout, res.stderr
    res = dep.run("moodump", "verify", urls[0], *root_args(root_settings))
    assert res.returncode == 0 and "PASS (restore)" in res.stdout, res.stderr

    # The old command, with -f naming an off-site copy: backup.sh -r restores SPEC from it.
    before = checksums(root_settings, source)
    with connect(root_settings) as c:
        c.execute(f"DELETE FROM {quote_ident(source)}.mdl_config WHERE id <= 100")  # damage
    prefix_env = host_env_prefix(dep.host)
    # root's password is empty: an empty <HOST>_PASSWORD would mean "unset" (DATABASE_PASSWORD
    # then applies, as in the old container), so it comes as a mounted secret that is empty
    empty = dep.tmp / "root-password"
    empty.write_text("")
    dep.env.pop(f"{prefix_env}_PASSWORD", None)
    dep.env.update({f"{prefix_env}_USER": "root", f"{prefix_env}_PASSWORD_FILE": str(empty)})
    name = urls[-1].rsplit("/", 1)[1]
    spec = f"{dep.host}:{dep.port}/{dep.db}"
    res = dep.run("bash", str(SCRIPT), "-s", "-r", spec, "-f", name)
    assert res.returncode == 0, res.stderr
    assert checksums(root_settings, source) == before


def test_encrypted_offsite_copies_hold_no_plaintext_and_need_the_key(
    deployment: Deployment, s3: rig_s3.SeaweedS3, root_settings: ConnSettings, tmp_path: Path
) -> None:
    dep = deployment
    add_marker(root_settings, dep.db)
    key = x25519.Identity.generate()
    identity = tmp_path / "restore-key.txt"
    identity.write_text(f"# the operator's key, kept off the cluster\n{key}\n")
    bucket, prefix = with_s3(dep, s3, MOODUMP_ENCRYPT_RECIPIENTS=str(key.to_public()))
    res = dep.run("moodump", "run", "--once", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["databases"][0]["offsite"]["encrypted"] is True

    # The control: the local (plaintext) backup does carry the marker.
    local = [p for p in dep.root.rglob("*.tsv.gz")]
    assert any(MARKER.encode() in gzip.decompress(p.read_bytes()) for p in local)
    stored = objects(s3, bucket, prefix)
    assert stored and any(k.endswith("/encrypted.json") for k in stored)
    for key_name, data in stored.items():
        assert MARKER.encode() not in data, key_name
        if data[:2] == b"\x1f\x8b":
            assert MARKER.encode() not in gzip.decompress(data), key_name
        if not key_name.endswith("/encrypted.json"):
            assert key_name.endswith(".age"), key_name  # nothing else leaves the pod

    url = f"s3://{bucket}/{prefix}/" + next(iter(stored)).split("/", 1)[0]
    target = "dr_encrypted"
    drop(root_settings, target)
    res = dep.run("moodump", "restore", url, *root_args(root_settings), "-d", target, "-q")
    assert res.returncode == 13, res.stderr
    assert str(key.to_public()) in res.stderr and "--identity" in res.stderr
    with connect(root_settings) as c:
        n = c.scalar(
            f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME='{target}'"
        )
        assert int(n) == 0  # failed before touching the target
    res = dep.run(
        "moodump", "restore", url, *root_args(root_settings), "-d", target, "-q",
        "--identity", str(identity),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert checksums(root_settings, target) == checksums(root_settings, dep.db)
    drop(root_settings, target)
    res = dep.run("moodump", "verify", "--offline", url)  # no key: the ciphertext only
    assert res.returncode == 0 and "PASS (ciphertext)" in res.stdout, res.stderr


def test_a_wrong_secret_key_fails_with_the_auth_code_and_prunes_nothing(
    deployment: Deployment, s3: rig_s3.SeaweedS3
) -> None:
    dep = deployment
    with_s3(dep, s3, S3_PASSWORD="not-the-secret", S3_PRUNE_BACKUPS="true", DAILY_BACKUPS="1")
    first = dep.run("moodump", "run", "--once", "--now", "2026-11-16T09:00:00")
    assert first.returncode == 3, first.stderr
    second = dep.run("moodump", "run", "--once", "--json", "--now", "2026-11-17T09:00:00")
    assert second.returncode == 3, second.stderr
    report = json.loads(second.stdout)
    (db,) = report["databases"]
    assert db["exit_code"] == 3, db
    assert "S3_USER" in db["error"] and "S3_PASSWORD" in db["error"], db["error"]
    assert report["pruned"] == [] and report["pruned_remote"] == []
    assert len(dep.done()) == 2  # both local backups stay (DAILY_BACKUPS=1 would prune one)
    assert "not-the-secret" not in second.stdout + second.stderr


def test_offsite_retention_keeps_the_newest_verified_copy(
    deployment: Deployment, s3: rig_s3.SeaweedS3
) -> None:
    dep = deployment
    bucket, prefix = with_s3(
        dep,
        s3,
        S3_PRUNE_BACKUPS="true",
        MOODUMP_OFFSITE_DAILY_BACKUPS="1",
        MOODUMP_OFFSITE_WEEKLY_BACKUPS="0",
        MOODUMP_OFFSITE_MONTHLY_BACKUPS="0",
    )
    days = ["2026-11-16", "2026-11-17", "2026-11-18"]  # Monday to Wednesday: daily tier
    pruned: list[str] = []
    for i, day in enumerate(days):
        if i == 2:
            dep.env["MOODUMP_VERIFY_AFTER_BACKUP"] = "none"  # the newest copy is not verified
        res = dep.run("moodump", "run", "--once", "--json", "--now", f"{day}T09:00:00")
        assert res.returncode == 0, res.stderr
        pruned += json.loads(res.stdout)["pruned_remote"]
    remote = sorted({k.split("/", 1)[0] for k in objects(s3, bucket, prefix)})
    # daily #1 is the unverified newest; the newest verified (the 17th) stays whatever the
    # counts say; the 16th went when the 17th arrived.
    assert [n[len(dep.core) + 1 :][:10] for n in remote] == days[1:]
    assert pruned == [f"{dep.core}_{days[0]}_09-00-00"]


def test_encryption_at_rest_keeps_only_ciphertext_on_the_volume(
    deployment: Deployment, s3: rig_s3.SeaweedS3, root_settings: ConnSettings, tmp_path: Path
) -> None:
    dep = deployment
    add_marker(root_settings, dep.db)
    key = x25519.Identity.generate()
    identity = tmp_path / "key.txt"
    identity.write_text(f"{key}\n")
    bucket, prefix = with_s3(
        dep,
        s3,
        MOODUMP_ENCRYPT_RECIPIENTS=str(key.to_public()),
        MOODUMP_ENCRYPT_AT_REST="true",
    )
    res = dep.run("moodump", "run", "--once", "--json")
    assert res.returncode == 0, res.stderr
    (backup,) = [p.parent for p in dep.root.rglob("encrypted.json")]
    files = [p for p in backup.rglob("*") if p.is_file()]
    assert all(p.suffix == ".age" or p.name == "encrypted.json" for p in files), files
    assert not any(MARKER.encode() in p.read_bytes() for p in files)
    assert not list(dep.root.rglob("manifest.json")) and not list(dep.root.glob("**/.*plaintext"))
    listing = json.loads(dep.run("moodump", "list", "--json").stdout)
    (entry,) = listing["databases"][0]["backups"]
    assert entry["status"] == "DONE" and entry["verify"] == "PASS"
    assert dep.run("moodump", "check").returncode == 0
    assert {k.split("/", 1)[0] for k in objects(s3, bucket, prefix)} == {backup.name}
    res = dep.run("moodump", "verify", "--offline", str(backup))
    assert res.returncode == 0 and "PASS (ciphertext)" in res.stdout, res.stderr
    target = "dr_at_rest"
    drop(root_settings, target)
    res = dep.run(
        "moodump", "restore", str(backup), *root_args(root_settings), "-d", target, "-q",
        "--identity", str(identity),
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert checksums(root_settings, target) == checksums(root_settings, dep.db)
    drop(root_settings, target)
    # a truncated ciphertext file makes the listing say so, as for a plain backup
    victim = next(p for p in files if p.suffix == ".age" and "/data/" in str(p))
    victim.write_bytes(victim.read_bytes()[:-1])
    listing = json.loads(dep.run("moodump", "list", "--json").stdout)
    (entry,) = listing["databases"][0]["backups"]
    assert entry["status"] == "INVALID" and victim.name in entry["error"], entry
