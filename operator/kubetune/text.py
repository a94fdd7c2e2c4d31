"""Bounded, sanitized excerpts of text kubetune does not control.

A trial's failure message, a scheduler's or API server's reason: such text is copied into
status, Events and logs only through `excerpt`, which keeps one line, drops control
characters, masks what looks like a credential, and caps the length. The operator cannot
read the Secrets a trial uses, so it cannot redact their exact values; masking
credential-shaped text and keeping excerpts short is what it can do (the admission policy
keeps a sweep from referencing a Secret its creator may not read in the first place).
"""

import re

# Status conditions and Events: Kubernetes caps an Event message at 1 KiB; stay well inside.
MESSAGE_LIMIT = 512
EXCERPT_LIMIT = 160
MASK = "***"

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
_SECRETS = [
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{6,}"),
    # key=value, key: value and "key": "value" where the key names a credential.
    re.compile(
        r"""(?ix)
        (["']?[\w.-]*(?:password|passwd|secret|token|api[_-]?key|access[_-]?key|credential|auth)[\w.-]*["']?
        \s*[:=]\s*)
        (["']?)[^\s"',;}]+\2
        """
    ),
    # user:password@ in a URL.
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"),
    # Well-known token shapes: Hugging Face, GitHub, AWS, Slack, JWTs, private keys.
    re.compile(r"()\b(?:hf_|ghp_|gho_|ghs_|github_pat_|xox[abp]-|AKIA|ASIA)[A-Za-z0-9_-]{8,}"),
    re.compile(r"()\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    re.compile(r"()-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)"),
    # Long random-looking runs (hex or base64 of 32+ characters with digits and letters).
    re.compile(r"()\b(?=[A-Za-z0-9+/_-]*\d)(?=[A-Za-z0-9+/_-]*[A-Za-z])[A-Za-z0-9+/_-]{32,}={0,2}"),
]


def sanitize(text: str) -> str:
    """One line, no control characters, credential-shaped parts masked; not shortened."""
    text = _CONTROL.sub(" ", text)
    text = " ".join(text.split())
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: (m.group(1) or "") + MASK, text)
    return text


def bounded(text: str, limit: int) -> str:
    """text cut to at most limit characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: max(0, limit - 3)] + "..."


def excerpt(text: str, limit: int = EXCERPT_LIMIT) -> str:
    """A sanitized, bounded excerpt of foreign text, fit for status, Events and logs."""
    return bounded(sanitize(text), limit)
