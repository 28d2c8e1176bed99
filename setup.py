"""Package discovery, the part of the build pyproject.toml cannot say.

The top-level configs/ folder (training recipes, serve.yaml, OCR labels and gauges) stays where it
is in the repository and ships inside the wheel as the package `lineinspect_configs`, which
annotation.config_loader.builtin_configs() finds in an installed copy.
"""

from setuptools import find_namespace_packages, setup

setup(
    packages=[
        *find_namespace_packages(include=["annotation*", "vision*", "serving*"]),
        "lineinspect_configs",
        *(f"lineinspect_configs.{name}" for name in find_namespace_packages("configs")),
    ],
    package_dir={"lineinspect_configs": "configs"},
)
