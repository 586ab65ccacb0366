from collections.abc import Callable

def fetch_format(
    fetch_row: Callable[[], tuple[bytes | None, ...] | None], escape_mask: bytes, max_bytes: int, /
) -> tuple[bytes, int, bool]: ...
