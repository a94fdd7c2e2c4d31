"""The trainer's one logger: lines on stderr that start `kubetune-trainer: `, secrets redacted.

Warnings read `kubetune-trainer: warning: ...`; a child logger adds its part of the
trainer (`kubetune-trainer: tiny: ...` from `kubetune_trainer.tiny`).
"""

import logging
import sys

from kubetune_trainer.redaction import redact

PREFIX = "kubetune-trainer"


class _Format(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)  # the message, and any traceback after it
        scope = record.name.removeprefix(log.name).lstrip(".")
        parts = [PREFIX, scope, "warning" if record.levelno == logging.WARNING else ""]
        return redact(": ".join([p for p in parts if p] + [text]))


class _Stderr(logging.Handler):
    """Writes to sys.stderr as it is at each record, so a replaced stderr gets the lines."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
            sys.stderr.flush()
        except Exception:
            self.handleError(record)


log = logging.getLogger("kubetune_trainer")
if not log.handlers:
    _handler = _Stderr()
    _handler.setFormatter(_Format())
    log.addHandler(_handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # the trainer's lines are its own, whatever the root logger does
