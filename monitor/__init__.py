"""callcenter-monitor: real-time CMS call-center compliance for Medicare plans."""

__version__ = "0.1.0"
