"""Progress bars and log lines at the command line's edge (the library only calls ``progress(done, total)``)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm import tqdm

log = logging.getLogger("zspace")


class _TqdmHandler(logging.Handler):
    """Log lines that do not tear progress bars apart."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stderr)


def setup_logging(verbosity: int) -> None:
    handler = _TqdmHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    log.setLevel({-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG))


@contextmanager
def bar(desc: str, quiet: bool, unit: str = "img") -> Iterator:
    """A progress callback ``(done, total)`` drawing one tqdm bar."""
    bar = None

    def update(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc=desc, unit=unit, leave=False, disable=quiet, file=sys.stderr)
        bar.update(done - bar.n)

    try:
        yield update
    finally:
        if bar is not None:
            bar.close()


@contextmanager
def labelled_bars(quiet: bool) -> Iterator:
    """A progress callback ``(what, done, total)``: one bar per ``what``, closed when the next one starts."""
    bars: dict[str, tqdm] = {}

    def update(what: str, done: int, total: int) -> None:
        if what not in bars:
            for old in bars.values():
                old.close()
            bars.clear()
            bars[what] = tqdm(total=total, desc=what, unit="step", leave=False, disable=quiet, file=sys.stderr)
        bars[what].update(done - bars[what].n)

    try:
        yield update
    finally:
        for bar in bars.values():
            bar.close()
