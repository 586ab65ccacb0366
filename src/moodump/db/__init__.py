"""Database access: the only package that talks to the MySQL driver."""

from moodump.db.connection import Connection, ConnSettings, cext_loaded, connect

__all__ = ["ConnSettings", "Connection", "cext_loaded", "connect"]
