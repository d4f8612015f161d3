"""harvest-monitor: lots, taxes and harvests (prices, book, detection, plans, alerts)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("harvest-monitor")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
