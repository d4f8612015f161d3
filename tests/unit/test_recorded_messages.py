"""Every feed parser accepts every recorded real message shape (tests/fixtures/venues)."""

from __future__ import annotations

import pytest

from streams.ticks import Tick
from tests.venue_corpus import RECV, Recorded, recorded, session

CORPUS = recorded()


def test_the_corpus_covers_every_venue_with_a_source_each() -> None:
    assert {r.venue for r in CORPUS} == {"binance", "coinbase", "kraken"}
    assert all(r.source.strip() for r in CORPUS)
    assert len([r for r in CORPUS if r.expect]) >= 7


@pytest.mark.parametrize("rec", CORPUS, ids=lambda r: r.id)
def test_the_parser_accepts_the_recorded_shape(rec: Recorded) -> None:
    default = "BNB/BTC" if rec.venue == "binance" else "BTC/USD"
    symbol = rec.expect["symbol"] if rec.expect else default
    s, link = session(rec.venue, rec.channel, symbol)
    out = s.handle(rec.raw.encode(), RECV)
    if rec.drop is not None:
        assert out == rec.drop
    elif rec.expect is None:
        assert out is None or out == []
        assert link.drops == []
    else:
        e = rec.expect
        base, quote = e["symbol"].split("/")
        expected = Tick(
            rec.venue, e["symbol"], base, quote, float(e["price_exact"]), e["ts_ms"], RECV,
            e.get("bid"), e.get("ask"), e["price_exact"],
        )  # fmt: skip
        assert out == [expected]
    assert link.subscribed_calls == (1 if rec.subscribes else 0)
    assert len(link.refusals) == (1 if rec.drop == "error_reply" else 0)
