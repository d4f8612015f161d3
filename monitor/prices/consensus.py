"""Cross-venue consensus: which venues' prices agree, and the median of those that do.

Pure functions over the USD prices of one asset's fresh venues (one price per venue).
Each venue is judged against a reference built from the others:

- 1 venue: no reference; its price is taken (the alert says `venues: 1`).
- 2 venues: the other venue's price. When the two disagree there is no telling which is
  right, so the price being judged (the newest tick) is the one rejected.
- 3 venues: the median of all three. The two others' median would be their midpoint,
  which one bad venue drags halfway (a 30% wick would make the two good venues look
  15% off); the middle of three is not moved by one bad venue.
- 4 or more: the median of the others.

A price more than `outlier_pct` (a fraction) away from its reference is an outlier.
The consensus price is the median of the venues that are not.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["agreeing", "deviates", "median", "reference"]


def median(values: Sequence[float]) -> float:
    """The median (the mean of the middle two for an even count); ValueError when empty."""
    n = len(values)
    if n == 0:
        raise ValueError("median of no values")
    ordered = sorted(values)
    mid = n // 2
    if n % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2.0


def reference(prices: Sequence[float], i: int) -> float | None:
    """The price that venue `i` of `prices` is judged against (None: nothing to judge by)."""
    n = len(prices)
    if n <= 1:
        return None
    if n == 2:
        return prices[1 - i]
    if n == 3:
        return median(prices)
    return median([p for j, p in enumerate(prices) if j != i])


def deviates(price: float, ref: float | None, outlier_pct: float) -> bool:
    """True when `price` is more than `outlier_pct` of `ref` away from it."""
    if ref is None:
        return False
    return abs(price - ref) > outlier_pct * ref


def agreeing(prices: Sequence[float], outlier_pct: float) -> list[int]:
    """Indexes of the prices that are within `outlier_pct` of their reference.

    Two venues agree or disagree together: either one within range of the other counts
    (the check is relative to the reference, so it is not quite symmetric at the edge).
    """
    if len(prices) == 2:
        a, b = prices
        together = not deviates(a, b, outlier_pct) or not deviates(b, a, outlier_pct)
        return [0, 1] if together else []
    return [i for i, p in enumerate(prices) if not deviates(p, reference(prices, i), outlier_pct)]
