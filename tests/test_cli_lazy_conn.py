"""Commands that connect only on some paths look the password up only on those paths."""

from __future__ import annotations

import os
import sys

import pexpect


def test_check_files_on_a_backup_never_prompts_for_a_password(tmp_path):
    # On a terminal with no password configured anywhere, the connection options would
    # prompt; reading a backup never connects, so it must fail on the backup, not prompt.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MYSQL", "MOODLE", "MOODUMP"))}
    env["HOME"] = str(tmp_path)  # no ~/.my.cnf
    (tmp_path / "moodledata").mkdir()
    child = pexpect.spawn(
        sys.executable,
        ["-m", "moodump", "check-files", "--moodledata", str(tmp_path / "moodledata"),
         str(tmp_path / "no-such-backup")],
        env=env, encoding="utf-8", timeout=60,
    )  # fmt: skip
    index = child.expect(["Password", pexpect.EOF])
    out = child.before or ""
    child.close()
    assert index == 1, f"prompted for a password: {out!r}"
    assert child.exitstatus != 0
    assert "no-such-backup" in out
