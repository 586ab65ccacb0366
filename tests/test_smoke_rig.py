from moodump.db import cext_loaded, connect


def test_c_extension_is_used():
    """The connector's C extension must really load (pure Python is 8-9x slower)."""
    assert cext_loaded()
    import mysql.connector

    assert mysql.connector.HAVE_CEXT


def test_server_answers(root_settings):
    with connect(root_settings) as c:
        assert c.scalar("SELECT 1") == b"1"


def test_rows_take_the_direct_path(root_settings):
    """moodump's accelerator is built and reads rows on the connector's session itself
    (the fast path the benchmarks measure); otherwise it says why."""
    from moodump.db import _speedups, rowstream

    assert _speedups.client_api() is None
    with connect(root_settings) as c:
        assert rowstream.fetch_path(c) == "direct", rowstream.direct_unavailable(c)


def test_c_extension_loads_whatever_python_imported_first():
    """A program that imported hashlib (the system libcrypto) or ssl before moodump still
    gets the connector's C extension and the direct path (the vendored OpenSSL differs)."""
    import subprocess
    import sys

    for first in ("hashlib", "ssl", "hashlib, ssl"):
        code = (
            f"import {first}\n"
            "from moodump.db import cext_loaded\n"
            "from moodump.db import _speedups\n"
            "assert cext_loaded(), 'no C extension'\n"
            "assert _speedups.client_api() is None, _speedups.client_api()\n"
        )
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert res.returncode == 0, (first, res.stderr)
