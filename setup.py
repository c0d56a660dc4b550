"""Build of the compiled search core, ``l4demons._core``; the rest of the package is in pyproject.toml.

The extension is optional: when the system compiler cannot build it, the
install still succeeds and l4demons runs its pure-Python search instead
(``l4demons.core`` logs one line saying so).
"""

from glob import glob

from pybind11.setup_helpers import ParallelCompile, Pybind11Extension, build_ext
from setuptools import setup

ParallelCompile("L4D_BUILD_JOBS", default=0).install()  # the sources compile in parallel (0: every core)

core = Pybind11Extension(
    "l4demons._core",
    sorted(glob("src/l4demons/_core/*.cpp")),
    depends=sorted(glob("src/l4demons/_core/*.hpp")),
    cxx_std=17,
    extra_compile_args=["-O3"],
    optional=True,
)

setup(ext_modules=[core], cmdclass={"build_ext": build_ext})
