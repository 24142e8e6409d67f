"""Progress bars for the long command-line tools (manage.py import_players / export_players /
seed_players and ``python -m bench``), drawn by tqdm on stderr.

Whether a bar is drawn:

- ``enabled=True`` (``--progress``) draws it, wherever stderr goes (tests force it this way);
- ``enabled=False`` (``--no-progress``, ``--quiet``) never draws it;
- ``enabled=None`` follows tqdm's ``disable=None`` convention: drawn only when stderr is a
  terminal, so logs, CI and a captured stderr stay free of carriage returns.

A process may set its default once (``set_default``): ``python -m bench --no-progress`` does, so
that every phase of a benchmark follows one switch without passing it down each call. Bars never
write to stdout, whose last line is the benchmark's JSON object.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import TextIO

from tqdm import tqdm

_default: bool | None = None


def set_default(enabled: bool | None) -> None:
    global _default
    _default = enabled


def progress_bar(
    *,
    total: int | float | None,
    desc: str,
    unit: str = "it",
    enabled: bool | None = None,
    file: TextIO | None = None,
    unit_scale: bool = False,
) -> tqdm:
    """A tqdm bar on stderr (or ``file``); see the module docstring for when it is drawn."""
    if enabled is None:
        enabled = _default
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        unit_scale=unit_scale,
        file=file or sys.stderr,
        disable=None if enabled is None else not enabled,
        # At most two redraws a second: a bar must cost nothing next to the work it reports.
        mininterval=0.5,
        dynamic_ncols=True,
        leave=True,
    )


@contextlib.contextmanager
def timed_bar(seconds: float, *, desc: str, enabled: bool | None = None) -> Iterator[None]:
    """A bar that fills over ``seconds`` of wall time, for work that runs for a set duration and
    reports nothing while it runs (a load test). Drawn by a thread that wakes twice a second,
    only when the bar is drawn at all, so an undrawn bar costs no thread."""
    bar = progress_bar(total=round(seconds, 1), desc=desc, unit="s", enabled=enabled)
    if bar.disable:
        bar.close()
        yield
        return
    started = time.monotonic()
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.5):
            bar.update(min(seconds, round(time.monotonic() - started, 1)) - bar.n)

    thread = threading.Thread(target=tick, name="progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        bar.update(min(seconds, round(time.monotonic() - started, 1)) - bar.n)
        bar.close()
