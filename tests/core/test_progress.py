"""core/progress.py: when a bar is drawn (tqdm's disable=None convention, --progress, the process
default that python -m bench sets), and the bar of a fixed-duration phase."""

from __future__ import annotations

import io
import sys

import pytest

from core import progress


@pytest.fixture(autouse=True)
def _default():
    yield
    progress.set_default(None)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def drawn(enabled: bool | None, stream: io.StringIO) -> str:
    with progress.progress_bar(total=3, desc="Work", enabled=enabled, file=stream) as bar:
        bar.update(3)
    return stream.getvalue()


def test_by_default_a_bar_is_drawn_on_a_terminal_only():
    assert drawn(None, io.StringIO()) == ""
    assert "Work: 100%" in drawn(None, Terminal())


def test_progress_forces_it_and_no_progress_drops_it():
    assert "3/3" in drawn(True, io.StringIO())
    assert drawn(False, Terminal()) == ""


def test_the_process_default_applies_when_a_call_does_not_choose():
    progress.set_default(True)
    assert "3/3" in drawn(None, io.StringIO())
    progress.set_default(False)
    assert drawn(None, Terminal()) == ""
    assert "3/3" in drawn(True, io.StringIO())


def test_a_timed_bar_fills_over_its_duration(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with progress.timed_bar(0.6, desc="Load", enabled=True):
        pass  # ended early: the bar shows the time it really took
    assert "Load:" in stream.getvalue() and "/0.6" in stream.getvalue()
    stream.truncate(0)
    with progress.timed_bar(0.6, desc="Load", enabled=False):
        pass
    assert stream.getvalue() == ""
