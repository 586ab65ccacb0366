"""Off-site copies in an S3 bucket: :class:`ObjectStoreTarget`, the old container's ``S3_*``.

The same surface as :class:`~moodump.offsite.ftps.FtpsTarget`, over
:class:`~moodump.storage.s3.S3Backend`. S3 has no rename, so a copy is published by
writing its ``manifest.json`` last (see :mod:`moodump.offsite.remote`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from moodump.offsite.remote import OffsiteTarget
from moodump.storage.s3 import S3Backend, S3Settings


class ObjectStoreTarget(OffsiteTarget):
    """A bucket (plus prefix) holding backup directories as ``NAME/<file>`` objects.

    ``sleep`` (between retries) and ``clock`` (durations) are injectable so tests never
    wait on the wall clock. ``url.display()`` is ``s3://bucket/prefix/ at endpoint``.
    """

    backend: S3Backend

    def __init__(
        self,
        settings: S3Settings,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(S3Backend(settings, sleep=sleep), clock=clock)
        self.settings = settings


__all__ = ["ObjectStoreTarget"]
