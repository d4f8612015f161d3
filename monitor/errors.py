"""Exceptions of the monitor package. Messages name where the problem is and what to do."""

from __future__ import annotations


class MonitorError(Exception):
    """Base of every error raised by `monitor`."""


class ConfigError(MonitorError):
    """The configuration is invalid; the message names the file and the key."""


class PortfolioError(MonitorError):
    """A portfolio file is invalid; the message is `file:line: field: what is wrong`."""


class LedgerError(MonitorError):
    """The ledger file cannot be used as asked; the message says what to do."""


class ExecutionError(MonitorError):
    """An execution setting or a venue refuses what the executor needs."""


class DisposalSourceError(MonitorError):
    """Realized disposals could not be read (ledger or CSV); the message says from where."""
