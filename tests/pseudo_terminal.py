"""Run a command in a real pseudo-terminal, as a person at a terminal runs it.

stdout and stderr are the terminal's slave side (isatty() is true for both); what the
command writes is read from the master side until the command ends.
"""

from __future__ import annotations

import os
import select
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def run_in_terminal(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 120.0,
) -> tuple[int, str]:
    """(exit code, everything the command printed on the terminal, \\r\\n made \\n)."""
    master, slave = os.openpty()
    full_env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "160"}
    full_env.pop("NO_COLOR", None)
    full_env.update(env or {})
    proc = subprocess.Popen(
        list(argv), cwd=cwd, stdin=slave, stdout=slave, stderr=slave, env=full_env
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the slave side is closed, the command is gone
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        code = proc.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return code, b"".join(chunks).decode("utf-8", "replace").replace("\r\n", "\n")
