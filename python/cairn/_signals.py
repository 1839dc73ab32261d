"""SIGTERM (a preemption notice) turned into a flag the next ``save_due`` acts on."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any, Optional

_LOG = logging.getLogger("cairn")


class PreemptionHandler:
    """Sets ``flag`` on SIGTERM and calls the handler installed before it, if that was a Python
    callable. The default action (terminate) is not chained: the point is to save first."""

    def __init__(self) -> None:
        self.flag = threading.Event()
        self._previous: Any = None
        self._installed = False

    def install(self) -> bool:
        """Installs the handler; False (and nothing done) off the main thread, where Python
        cannot install signal handlers."""
        if threading.current_thread() is not threading.main_thread():
            _LOG.info("cairn: not on the main thread; SIGTERM will not trigger an emergency save "
                      "(call CheckpointManager.request_preemption() from your own handler)")
            return False
        self._previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._handle)
        self._installed = True
        return True

    def _handle(self, signum: int, frame: Optional[Any]) -> None:
        self.flag.set()
        previous = self._previous
        if callable(previous):
            previous(signum, frame)

    def uninstall(self) -> None:
        """Puts the previous handler back if ours is still the one installed (and we are on the
        main thread)."""
        if not self._installed or threading.current_thread() is not threading.main_thread():
            return
        self._installed = False
        if signal.getsignal(signal.SIGTERM) == self._handle:
            signal.signal(signal.SIGTERM, self._previous if self._previous is not None else signal.SIG_DFL)
