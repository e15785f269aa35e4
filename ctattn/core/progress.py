"""Progress of long runs on stderr: a tqdm bar on a terminal, a plain line every ~30 s otherwise.

A run reports ``fraction`` of its work done (simulated time over total, finished tasks over
all); :class:`Progress` shows it

* on a terminal: a tqdm bar (percent, elapsed, ETA), shown once the run has lasted ``after`` s;
* elsewhere (batch jobs, logs, stderr redirected to a file): one plain line once the run has
  lasted ``after`` s, then at most one every ``every`` s (30), and a last line when it ends,
  so a log shows that a long run is alive without filling up.

While nothing has been reported yet (Brian2 building and compiling the network), a background
ticker keeps the display alive: the bar's elapsed time advances on a terminal, and the plain
line says ``building`` every ``every`` s. :meth:`Progress.close` (or leaving ``with progress:``)
stops it. ``Progress`` is also Brian2's ``report`` callback: ``progress(elapsed, completed,
start, duration)``.

Lives in the core layer so that every backend and the sweep driver can use it; tqdm is
optional (without it a terminal gets the plain lines rewritten in place).
"""

from __future__ import annotations

import sys
import threading
import time

__all__ = ["Progress", "PLAIN_EVERY_S"]

PLAIN_EVERY_S = 30.0


class Progress:
    """Progress display for one run or sweep.

    ``label``: what runs (``"ctattn spiking"``); ``unit``: what ``total`` counts
    (``"s simulated"``, ``"tasks"``); ``after``: seconds before anything is shown (short runs
    stay quiet); ``every``: seconds between plain lines; ``stream``: stderr by default;
    ``tty``: force the terminal (True) or plain (False) display; ``ticker``: run the
    background ticker for the build phase.
    """

    def __init__(
        self,
        label: str = "ctattn",
        *,
        total: float | None = None,
        unit: str = "s simulated",
        after: float = 2.0,
        every: float = PLAIN_EVERY_S,
        stream=None,
        tty: bool | None = None,
        ticker: bool = False,
    ):
        self.label, self.unit, self.total = label, unit, total
        self.after, self.every = after, every
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)()) if tty is None else tty
        self.shown = False
        self.closed = False
        self.done = 0.0
        self.note = ""
        self._start = time.monotonic()
        self._last_line = -float("inf")
        self._bar = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        if ticker:
            self._thread = threading.Thread(target=self._tick, name="ctattn-progress", daemon=True)
            self._thread.start()

    # -- reporting -----------------------------------------------------------------------------
    def __call__(self, elapsed, completed, start=None, duration=None):
        """Brian2's ``report`` callback: ``completed`` in [0, 1] of ``duration`` simulated."""
        if duration is not None:
            self.total = float(duration)
        fraction = float(completed)
        self.update(fraction * (self.total or 1.0), elapsed=float(elapsed), final=fraction >= 1.0)

    def update(self, done: float, *, elapsed: float | None = None, note: str = "", final: bool = False):
        """``done`` of ``total`` finished after ``elapsed`` s (default: since construction)."""
        own = time.monotonic() - self._start
        # Brian2's elapsed counts from the start of the simulation loop, ours from construction
        # (the build phase included): the larger is the time the user has waited.
        elapsed = own if elapsed is None else max(float(elapsed), own)
        with self._lock:
            if self.closed:
                return
            self.done, self.note = float(done), note
            # a run shorter than `after` stays quiet, even at its end
            if self.shown or (elapsed >= self.after and not final):
                if self.tty:
                    self._show_bar(elapsed, final)
                elif final or not self.shown or elapsed - self._last_line >= self.every:
                    self._print_line(elapsed)
                self.shown = True
        if final:
            self.close()

    def close(self) -> None:
        """Stop the ticker and finish the bar (idempotent)."""
        self._stop.set()
        with self._lock:
            if self.closed:
                return
            self.closed = True
            if self._bar is not None:
                self._bar.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # -- display -------------------------------------------------------------------------------
    def text(self, elapsed: float) -> str:
        """The plain line: label, percent of total, elapsed and estimated time left."""
        if self.total is None or self.total <= 0:
            return f"{self.label}: building, {elapsed:.0f} s elapsed"
        fraction = min(self.done / self.total, 1.0)
        eta = f", ETA {elapsed * (1 - fraction) / fraction:.0f} s" if 0 < fraction < 1 else ""
        note = f" ({self.note})" if self.note else ""
        if self.unit == "s simulated":
            what = f"of {self.total:.2f} s simulated"
        else:
            what = f"{self.done:g}/{self.total:g} {self.unit}"
        return f"{self.label}: {100 * fraction:5.1f}% {what} in {elapsed:.1f} s{eta}{note}"

    def _print_line(self, elapsed: float) -> None:
        print(self.text(elapsed), file=self.stream, flush=True)
        self._last_line = elapsed

    def _show_bar(self, elapsed: float, final: bool) -> None:
        if self._bar is None:
            try:
                from tqdm import tqdm
            except ImportError:  # no tqdm: rewrite one plain line in place
                print("\r" + self.text(elapsed), end="\n" if final else "", file=self.stream, flush=True)
                return
            self._bar = tqdm(
                total=self.total,
                desc=self.label,
                unit=self.unit if self.unit != "s simulated" else "s",
                file=self.stream,
                leave=True,
                dynamic_ncols=True,
                bar_format=None if self.total else "{desc}: {elapsed} building",
            )
            self._bar.start_t -= time.monotonic() - self._start  # count the wait before the bar
            self._bar.last_print_t = self._bar.start_t
        if self.total and self._bar.total != self.total:
            self._bar.total = self.total
            self._bar.bar_format = None  # the build phase is over: a full bar from now on
        done = min(self.done, self._bar.total or self.done)
        self._bar.n = int(done) if float(done).is_integer() else done
        if self.note:
            self._bar.set_postfix_str(self.note, refresh=False)
        self._bar.refresh()

    def _tick(self) -> None:
        """Keep the display alive while nothing reports (the build phase)."""
        period = 1.0
        while not self._stop.wait(period):
            with self._lock:
                if self.closed:
                    return
                elapsed = time.monotonic() - self._start
                if elapsed < self.after:
                    continue
                if self.tty:
                    self._show_bar(elapsed, False)
                    self.shown = True
                elif not self.shown or elapsed - self._last_line >= self.every:
                    self._print_line(elapsed)
                    self.shown = True
