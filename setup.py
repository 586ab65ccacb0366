"""Build hook for the optional C accelerator (all metadata lives in pyproject.toml).

``optional=True``: without a C compiler the install still succeeds and moodump lets the
server format rows instead (slower on the server, identical output).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "moodump.db._speedups",
            ["src/moodump/db/_speedups.c"],
            optional=True,
            extra_compile_args=["-O2"],
            # dlopen/dlsym: the client library is looked up inside the connector's own
            # extension module (libdl is part of libc on newer glibc; the stub is harmless).
            libraries=["dl"],
        )
    ]
)
