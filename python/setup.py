"""Build of the optional C accelerator ``dsxir._accel``; the rest is in pyproject.toml.

The extension is optional: without a working compiler the package installs
without it and runs the pure-Python code, which gives identical results.
"""

from __future__ import annotations

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

_GCC_FLAGS = ["-O2", "-Wall", "-Wextra", "-Wshadow", "-Wstrict-prototypes"]


class _BuildExt(build_ext):  # type: ignore[misc]
    """Adds optimization and warning flags for gcc and clang (not for MSVC)."""

    def build_extensions(self) -> None:
        if self.compiler.compiler_type == "unix":
            for extension in self.extensions:
                extension.extra_compile_args = [*extension.extra_compile_args, *_GCC_FLAGS]
        super().build_extensions()


setup(
    ext_modules=[Extension("dsxir._accel", sources=["dsxir/_accel.c"], optional=True)],
    cmdclass={"build_ext": _BuildExt},
)
