"""Per-target progress of a long command (`run`, `train`, `bench`): cells (or runs) done of the total, the time
elapsed and an estimate of the time left.

On a terminal: one live bar per target (`rich`). Elsewhere (a CI log, a file): a plain line per target each time it
passes another tenth of its total, and when it finishes:

    xentcompat: torch: 120/1187 cells (10%), 35 s elapsed, about 5 min 10 s left

With more than one target, an overall line follows the same rule over the sum of their counts, once every target's
total is known, naming how many targets are done:

    xentcompat: all 6 targets: 2 done, 3400/5951 cells (57%), 4 min 10 s elapsed, about 3 min 5 s left

(on a terminal, a bar of its own). The counts come from whoever runs the work: `Progress.update(name, done, total)` sets them (from a shard's own
record files, see `watch`), `Progress.advance(name)` counts one more. Usage:

    with progress_display("cells") as progress:
        progress.add("torch", total=1187)
        ...
        progress.advance("torch")
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn, \
    TimeRemainingColumn

STEPS = 10  # plain lines: one per tenth


@dataclass
class _Task:
    total: int | None
    done: int = 0
    start: float = field(default_factory=time.monotonic)
    step: int = -1  # the last tenth a plain line was written for
    finished: bool = False
    first: tuple[float, int] | None = None  # when a count was first seen, and that count (the rate runs from it)

    def left(self) -> float | None:
        """Seconds left at the rate since the first count (the start-up before it is no measure of the rate)."""
        if self.first is None or not self.total or not self.first[1] < self.done < self.total:
            return None
        since, counted = self.first
        return (time.monotonic() - since) * (self.total - self.done) / (self.done - counted)


class Progress:
    """What each target has done; shown as live bars on a terminal, else as plain lines (see the module's text)."""

    def __init__(self, unit: str, stream: TextIO, live: bool):
        self.unit, self.stream, self.lock = unit, stream, threading.Lock()
        self.tasks: dict[str, _Task] = {}
        self.overall, self.finished_said = _Task(None), 0
        self.bars = _bars(stream, unit) if live else None
        self.ids: dict[str, int] = {}

    def add(self, name: str, total: int | None = None) -> None:
        """Start showing `name` (its total may come later, with `update`); adding it again (when its work starts)
        starts its clock again."""
        with self.lock:
            self.tasks[name] = _Task(total)
            if self.bars is not None and name not in self.ids:
                self.ids[name] = self.bars.add_task(name, total=total)

    def update(self, name: str, done: int, total: int | None = None) -> None:
        """`name` has done `done` of `total` (None: the total known so far)."""
        with self.lock:
            task = self.tasks.get(name) or self.tasks.setdefault(name, _Task(total))
            task.done, task.total = done, task.total if total is None else total
            task.first = task.first or ((time.monotonic(), done) if done else None)
            self._show(name, task)
            self._show_overall()

    def advance(self, name: str, count: int = 1) -> None:
        with self.lock:
            task = self.tasks[name]
            task.done += count
            self._show(name, task)
            self._show_overall()

    def finish(self, name: str) -> None:
        """`name` is done (whatever its count reached): its last line, once."""
        with self.lock:
            task = self.tasks.get(name)
            if task is None or task.finished:
                return
            task.finished = True
            if self.bars is None:
                self.stream.write(plain_line(name, task.done, task.total, time.monotonic() - task.start,
                                             self.unit) + "\n")
                self.stream.flush()
            self._show_overall()

    def _show_overall(self) -> None:
        """The sum over the targets (with more than one): with a share and the time left once every total is known,
        else a line each time another target is done; its last line when all are."""
        tasks = list(self.tasks.values())
        if len(tasks) < 2:
            return
        overall, finished = self.overall, sum(1 for t in tasks if t.finished)
        known = all(task.total is not None for task in tasks)
        overall.done, overall.total = sum(t.done for t in tasks), sum(t.total for t in tasks) if known else None
        overall.first = overall.first or ((time.monotonic(), overall.done) if overall.done else None)
        if self.bars is not None:
            if "all" not in self.ids:
                self.ids["all"] = self.bars.add_task(f"all {len(tasks)} targets")
            self.bars.update(self.ids["all"], completed=overall.done, total=overall.total)
            return
        step = (STEPS if finished == len(tasks) else
                min(STEPS - 1, overall.done * STEPS // max(overall.total, 1)) if known else -1)
        if step > overall.step or finished > self.finished_said:
            overall.step, self.finished_said = max(step, overall.step), finished
            left = overall.left() if known and finished < len(tasks) else None
            line = plain_line(f"all {len(tasks)} targets", overall.done, overall.total,
                              time.monotonic() - overall.start, self.unit, left)
            self.stream.write(line.replace("targets: ", f"targets: {finished} done, ", 1) + "\n")
            self.stream.flush()

    def _show(self, name: str, task: _Task) -> None:
        if self.bars is not None:
            if name not in self.ids:
                self.ids[name] = self.bars.add_task(name)
            self.bars.update(self.ids[name], completed=task.done, total=task.total)
            return
        if not task.total:
            return
        step = min(STEPS, task.done * STEPS // task.total)
        if step > task.step and not task.finished:
            task.step = step
            task.finished = step == STEPS
            self.stream.write(plain_line(name, task.done, task.total, time.monotonic() - task.start, self.unit,
                                         task.left()) + "\n")
            self.stream.flush()


def plain_line(name: str, done: int, total: int | None, elapsed: float, unit: str, left: float | None = None) -> str:
    """`xentcompat: torch: 120/1187 cells (10%), 35 s elapsed, about 5 min 13 s left` (`left`: seconds, None when
    not known yet)."""
    if not total:
        return f"xentcompat: {name}: {done} {unit}, {duration(elapsed)} elapsed"
    line = f"xentcompat: {name}: {done}/{total} {unit} ({100 * done // total}%), {duration(elapsed)} elapsed"
    if left is not None and 0 < done < total:
        line += f", about {duration(left)} left"
    return line


def duration(seconds: float) -> str:
    """`35 s`, `5 min 10 s`, `1 h 2 min`."""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@contextmanager
def progress_display(unit: str = "cells", stream: TextIO | None = None,
                     live: bool | None = None) -> Iterator[Progress]:
    """A `Progress` for the block: live bars when `stream` (default stderr) is a terminal, else plain lines."""
    stream = sys.stderr if stream is None else stream
    progress = Progress(unit, stream, stream.isatty() if live is None else live)
    if progress.bars is None:
        yield progress
        return
    with progress.bars:
        yield progress


def watch(progress: Progress, name: str, count: Callable[[], tuple[int, int | None]], stop: threading.Event,
          every: float = 1.0) -> threading.Thread:
    """A daemon thread that calls `count()` -> (done, total) every `every` seconds, until `stop`, and shows it."""

    def poll() -> None:
        while True:
            stopped = stop.wait(every)
            done, total = count()
            progress.update(name, done, total)
            if stopped:
                return

    thread = threading.Thread(target=poll, daemon=True, name=f"progress {name}")
    thread.start()
    return thread


def _bars(stream: TextIO, unit: str) -> RichProgress:
    return RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn(unit),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        console=Console(file=stream), transient=False)


@contextmanager
def watching(progress: Progress, name: str, count: Callable[[], tuple[int, int | None]],
             every: float = 1.0) -> Iterator[None]:
    """Show `name`'s counts (`count()` -> (done, total), polled every `every` seconds) while the block runs; its
    last count and line when it ends."""
    progress.add(name)
    stop = threading.Event()
    thread = watch(progress, name, count, stop, every)
    try:
        yield
    finally:
        stop.set()
        thread.join()
        progress.finish(name)
