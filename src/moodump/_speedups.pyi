from collections.abc import Callable
from typing import Any

def fetch_format(
    fetch_row: Callable[[], tuple[bytes | None, ...] | None], escape_mask: bytes, max_bytes: int, /
) -> tuple[bytes, int, bool]: ...

def usable(mysql: Any, thread_id: int, /) -> str | None: ...

class StreamError(Exception):
    errno: int
    msg: str

class Stream:
    def __init__(self, mysql: Any, thread_id: int, sql: bytes, escape_mask: bytes) -> None: ...
    def fetch(self, max_bytes: int, /) -> tuple[bytes, int, bool]: ...
    def close(self) -> None: ...
