"""Build configuration that pyproject.toml cannot express: the optional C extension.

``absolutezero_code.executor._forkjobs`` is the sandbox worker's fork loop (see its
source for why it is C). It is optional: without a C compiler the install still
succeeds and the worker uses its pure-Python loop (same isolation, fewer programs/s).
Everything else about the package lives in pyproject.toml.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "absolutezero_code.executor._forkjobs",
            sources=["environments/code/absolutezero_code/executor/_forkjobs.c"],
            extra_compile_args=["-O2"],
            optional=True,
        )
    ]
)
