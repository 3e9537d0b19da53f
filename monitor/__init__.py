"""callcenter-monitor: real-time CMS call-center compliance for Medicare plans."""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml holds the version; the installed distribution's metadata carries it here.
    __version__ = version("callcenter-monitor")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
