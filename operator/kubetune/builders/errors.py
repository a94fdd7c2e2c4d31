"""The one error builders raise: a spec the CRD schema accepted but no pod can be built from."""


class BuildError(ValueError):
    """A field of the sweep that makes a trial pod impossible; .field is its path."""

    def __init__(self, field: str, rule: str) -> None:
        self.field = field
        self.rule = rule
        super().__init__(f"{field}: {rule}")
