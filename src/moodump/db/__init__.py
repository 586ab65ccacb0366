"""Database access: the only package that talks to the MySQL driver."""

from .connection import Connection, ConnSettings, connect, cext_loaded

__all__ = ["ConnSettings", "Connection", "cext_loaded", "connect"]
