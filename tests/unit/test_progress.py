"""Progress of long work: a bar redrawn in place on a terminal, plain lines otherwise,
nothing for work that is over before the first line is due."""

from __future__ import annotations

import io

from monitor.progress import Phases, Progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_every_interval_and_at_the_end() -> None:
    out, clock = io.StringIO(), Clock()
    with Progress("import p.csv", 1000, "lots", stream=out, every_s=5, clock=clock) as p:
        p.update(100)  # at 0 s: too soon
        clock.now += 5
        p.update(450)
        clock.now += 1
        p.update(600)  # 1 s after the last line: too soon
        clock.now += 2
    assert out.getvalue().splitlines() == [
        "import p.csv: 450/1,000 lots (45%) 5.0s",
        "import p.csv: 1,000/1,000 lots (100%) 8.0s  done",
    ]


def test_a_bar_redrawn_in_place_on_a_terminal() -> None:
    out, clock = io.StringIO(), Clock()
    p = Progress("reading", 200, "lots", stream=out, bar=True, clock=clock)
    clock.now += 0.6
    p.update(50)
    clock.now += 0.6
    p.finish()
    frames = out.getvalue().split("\r\x1b[2K")[1:]
    assert frames == [
        "reading [######------------------]  25% 50/200 lots 0.6s",
        "reading [########################] 100% 200/200 lots 1.2s\n",
    ]


def test_quick_work_shows_nothing() -> None:
    out, clock = io.StringIO(), Clock()
    with Progress("reading", 10, stream=out, bar=True, clock=clock) as p:
        p.update(10)
    assert out.getvalue() == ""


def test_phases_one_line_each_ending_when_done_or_when_the_next_begins() -> None:
    out, clock = io.StringIO(), Clock()
    phases = Phases("lots", stream=out, clock=clock)
    phases("reading", 0, 10)
    clock.now += 6
    phases("reading", 5, 10)
    phases("checking", 0, 10)  # ends reading, at 5 of 10
    clock.now += 6
    phases("checking", 10, 10)  # done: its last line at once
    phases("writing", 0, 10)
    phases("writing", 10, 10)  # quick: nothing
    phases.finish()
    assert out.getvalue().splitlines() == [
        "reading: 5/10 lots (50%) 6.0s",
        "reading: 10/10 lots (100%) 6.0s  done",
        "checking: 10/10 lots (100%) 6.0s  done",
    ]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bench_progress_a_bar_of_sections_on_a_terminal_plain_lines_otherwise() -> None:
    from monitor.bench.runner import stderr_progress

    messages = ["ceilings: raw aiokafka produce", "lots: designing 3,000", "latency: 1,500 ticks/s"]
    piped = io.StringIO()
    progress = stderr_progress(piped)
    for message in messages:
        progress(message)
    progress.finish()
    lines = piped.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == messages
    assert all(line.startswith("[bench +") for line in lines)

    tty = Terminal()
    progress = stderr_progress(tty)
    progress._bar._next = 0.0  # draw at once (the bar waits QUIET_S otherwise)
    for message in messages:
        progress(message)
    frames = tty.getvalue().split("\r\x1b[2K")
    assert frames[-1].startswith("bench [############------------]  50% 3/6 sections")
    progress.finish()
    assert tty.getvalue().endswith("\n")
