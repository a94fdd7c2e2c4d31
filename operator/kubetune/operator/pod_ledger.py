"""The pods this process just asked to create or delete: the watch lags behind our own acts.

Without it a pass that runs before the watch shows a new pod would create it again, and one
that runs before a deletion shows would ask to delete it again.
"""

from dataclasses import dataclass, field

# A pod we created may take this long to show up in the watch-fed index.
CREATE_GRACE_SECONDS = 30.0
# Do not ask again to delete a pod we asked to delete this recently.
DELETE_RETRY_SECONDS = 10.0


@dataclass
class PodLedger:
    created: dict[str, tuple[int, float]] = field(default_factory=dict)  # name: (attempt, at)
    deleting: dict[str, float] = field(default_factory=dict)  # name: asked at

    def note_created(self, name: str, attempt: int, now: float) -> None:
        self.created[name] = (attempt, now)

    def seen(self, name: str) -> None:
        """The pod showed up: the watch has caught up with its creation."""
        self.created.pop(name, None)

    def recently_created(self, name: str, now: float, attempt: int | None = None) -> bool:
        entry = self.created.get(name)
        if entry is None or (attempt is not None and entry[0] != attempt):
            return False
        return now - entry[1] < CREATE_GRACE_SECONDS

    def may_delete(self, name: str, now: float) -> bool:
        """True, and noted, unless a deletion of this pod was asked for just now."""
        asked = self.deleting.get(name)
        if asked is not None and now - asked < DELETE_RETRY_SECONDS:
            return False
        self.deleting[name] = now
        return True

    def delete_failed(self, name: str) -> None:
        self.deleting.pop(name, None)
