"""Every signal that stops a run (Ctrl-C, SIGTERM), counted however many arrive.

Python turns Ctrl-C into a KeyboardInterrupt, and pytest then ends the run in order: the claims
that finished are kept and the report is written with the run marked interrupted. A second
signal used to land inside that ending: in the report write itself, or before it, so the store
kept the entry of the last claim write (not finished, not interrupted) and no banner. Here each
SIGINT and SIGTERM is recorded (:attr:`Interruptions.received`); outside a protected section it
raises KeyboardInterrupt as Python's default handler does (SIGTERM too: ``timeout`` and batch
schedulers end a run as Ctrl-C does); inside one (:meth:`Interruptions.protected`, around every
write of the report) it is held until the section ends, so a write is never cut in half.
"""

from __future__ import annotations

import signal
import threading
from types import TracebackType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interruptions:
    def __init__(self) -> None:
        self.received: list[str] = []  # signal names, in the order they arrived
        self._depth = 0  # nesting of protected sections
        self._held = False
        self._previous: dict[int, object] = {}

    def install(self) -> bool:
        """Handle SIGINT and SIGTERM from now on (the main thread only); False where it cannot."""
        if threading.current_thread() is not threading.main_thread():
            return False
        for sig in SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handle)
        return True

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        self.received.append(name)
        if self._depth:
            self._held = True
            return
        raise KeyboardInterrupt(f"signal {name}")

    def protected(self, reraise: bool = True) -> _Protected:
        """A section no signal interrupts: one that arrives inside is recorded, and raised as a
        KeyboardInterrupt when the section ends (``reraise``; the run's last write does not: the
        run is ending anyway, and what it wrote already says it was interrupted)."""
        return _Protected(self, reraise)


class _Protected:
    def __init__(self, owner: Interruptions, reraise: bool):
        self.owner, self.reraise = owner, reraise

    def __enter__(self) -> None:
        self.owner._depth += 1

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        owner = self.owner
        owner._depth -= 1
        if owner._depth == 0 and owner._held:
            owner._held = False
            if self.reraise and kind is None:
                raise KeyboardInterrupt(f"signal {owner.received[-1]} (held while the claims report was written)")
