"""SIGTERM handling: a flag the training loop checks between steps."""

import signal
import threading
from types import FrameType

from kubetune_trainer.log import log


class StopFlag:
    """Set by SIGTERM (or SIGINT); the loop stops at its next check."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal_name: str | None = None

    def __call__(self) -> bool:
        return self._event.is_set()

    def set(self, reason: str = "stop requested") -> None:
        self.signal_name = reason
        self._event.set()

    def install(self) -> "StopFlag":
        """Handle SIGTERM and SIGINT in the main thread from now on."""

        def handle(signum: int, frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self():
                return
            log.info(f"{name} received, stopping at the next step")
            self.set(name)

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)
        return self
