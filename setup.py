"""The one piece of the build pyproject.toml cannot declare: the gateway's optional C fast path.

`optional=True`: where no C compiler is available the install still succeeds, and the gateway runs on its
pure-Python path (httptools for every head), which behaves the same, only with more CPU per request.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "juanie.engines.local.gateway._fasthttp",
            ["src/juanie/engines/local/gateway/_fasthttp.c"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
