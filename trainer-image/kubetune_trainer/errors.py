"""The ways a trial ends early, each mapped to an exit status by the entry point."""


class ConfigError(Exception):
    """Bad configuration: the message names the field and the rule, on one line."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}" if field else rule)


class TrainingFailed(Exception):
    """Training went wrong in a way retrying the same settings would repeat (NaN, divergence)."""


class Stopped(Exception):
    """SIGTERM arrived: stop at the next step and report what there is."""
