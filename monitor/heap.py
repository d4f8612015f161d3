"""The interpreter heap: long-lived objects kept out of the cyclic collector's walks.

Measured (docs/performance.md, "Stalls"): at 1M lots the hot path stalled 150-200 ms
about once a minute, and every such stall was a generation-2 collection walking every
container object the process had made since start (imports, settings, the book, the
bus clients: ~240,000 objects). Those objects live as long as the process, so walking
them finds nothing. `settle()` once the pipeline is built moves them to the permanent
generation (`gc.freeze()`): later full collections walk only what was made since, and
cost well under a millisecond. Raising the generation thresholds instead would only make
the same 190 ms walk rarer.
"""

from __future__ import annotations

import gc
import logging
import time

log = logging.getLogger(__name__)


def settle() -> int:
    """Collect once, then freeze every surviving object; returns how many were frozen.

    Call when the long-lived state is built (the pipeline's start): the collection here
    is the one full walk the process pays for them.
    """
    started = time.perf_counter()
    gc.collect()
    gc.freeze()
    frozen = gc.get_freeze_count()
    log.info(
        "long-lived objects frozen out of the cyclic collector",
        extra={"objects": frozen, "ms": round((time.perf_counter() - started) * 1e3, 1)},
    )
    return frozen


def freeze_new() -> None:
    """Freeze what was made since the last freeze, without a collection (no pause).

    For a rebuild of long-lived state on the hot path (the book over newly held lots):
    its objects join the permanent generation. Cyclic garbage alive at that instant is
    kept for good, so call it only after a rebuild, not per tick.
    """
    gc.freeze()


def release() -> None:
    """Return frozen objects to the collector (the pipeline is over): frozen cycles are
    never freed, so a process that builds another pipeline (the bench, tests) would keep
    the last one's book alive."""
    gc.unfreeze()
