"""Where a trial says its trained artifacts are: trial-written text, checked before status.

The path comes from the trial's result (TrialResult.adapterPath); kubetune records it for
succeeded trials and names the best one's in status.best.artifacts and best.yaml. It is
foreign text, so it is taken whole or not at all: a path cut short, or with characters
masked, would name another folder.
"""

from kubetune.text import sanitize

# Status holds one per succeeded trial (compressed in the archive); paths are short.
MAX_ARTIFACTS_PATH = 256


def artifacts_path(reported: str | None) -> str | None:
    """The reported path when it is fit to show; None when absent, too long, not one line
    of printable text, or with a credential-shaped part (sanitize would change it).

    Checked part by part: a whole path reads as one long token to the masking of
    random-looking runs, and would be refused for its length alone.
    """
    if not reported or len(reported) > MAX_ARTIFACTS_PATH:
        return None
    if any(sanitize(part) != part for part in reported.split("/")):
        return None
    return reported
