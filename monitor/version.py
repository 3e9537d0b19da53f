"""The versions a worker runs with: printed by ``monitor --version`` and exported as
``callcenter_build_info``, so both tell an operator the same thing."""

from __future__ import annotations

import platform
from importlib import metadata

from monitor import __version__

# Distribution name on PyPI -> the label it gets.
_COMPONENTS = {"faust-streaming": "faust", "aiokafka": "aiokafka"}


def component_versions() -> dict[str, str]:
    """``version`` (the monitor's), ``python``, ``faust`` and ``aiokafka``."""
    versions = {"version": __version__, "python": platform.python_version()}
    for distribution, label in _COMPONENTS.items():
        try:
            versions[label] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            versions[label] = "absent"
    return versions


def version_line() -> str:
    """``monitor 0.1.0 (python 3.11.9, faust 0.15.3, aiokafka 0.14.0)``."""
    versions = component_versions()
    rest = ", ".join(f"{name} {value}" for name, value in versions.items() if name != "version")
    return f"monitor {versions['version']} ({rest})"
