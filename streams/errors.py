"""Exceptions of the streams package: feeds, simulator, bus. Messages say what to do."""

from __future__ import annotations


class StreamsError(Exception):
    """Base of every error raised by `streams`."""


class TickFormatError(StreamsError, ValueError):
    """A message could not be turned into a Tick (malformed, wrong type, unknown symbol)."""


class FeedError(StreamsError):
    """A feed cannot run as configured (bad URL, unknown symbol, subscription refused)."""


class BusError(StreamsError):
    """The bus cannot be reached or used (broker down, topic missing and not creatable)."""


class SimulatorError(StreamsError, ValueError):
    """The simulated exchange cannot run as asked (unknown symbol or venue, bad parameter)."""
