"""Prometheus base URLs: what one may look like, which ones a sweep may use, and API URLs.

A sweep's spec.metrics.prometheus.url is tenant input that makes the operator send requests,
so it is held to an admin's allow-list (the operator's default URL plus its allowed URLs).

Rule: a URL is allowed when an allowed entry has the same scheme, host and port (default
ports filled in, host compared case-insensitively) and the URL's path equals the entry's path
or lies below it at a segment boundary (entry /prom allows /prom and /prom/tenant-a, not
/prometheus). Neither side may carry userinfo, a query string or a fragment (not even an
empty `?` or `#`), dot segments, percent escapes, whitespace or control characters: those are
refused outright, so nothing but the path can vary and the API path is always appended to it.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

FIELD = "spec.metrics.prometheus.url"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9_~.-]+")
MAX_URL_LENGTH = 2048


class UrlRefused(ValueError):
    """A URL that is malformed or not on the allow-list; the message names the rule."""


@dataclass(frozen=True)
class BaseUrl:
    """A Prometheus base URL, normalized: lower-case scheme and host, explicit port, path
    without a trailing slash ('' for the root)."""

    scheme: str
    host: str
    port: int
    path: str

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = _DEFAULT_PORTS[self.scheme] == self.port
        netloc = host if default else f"{host}:{self.port}"
        return urlunsplit((self.scheme, netloc, self.path, "", ""))

    def api(self, endpoint: str) -> str:
        """The URL of an API endpoint below this base, e.g. api/v1/query.

        Joined segment by segment on the parsed path, never by pasting strings, so no
        character of the base can turn the endpoint into a query string or fragment.
        """
        segments = [s for s in endpoint.split("/") if s]
        if not segments or not all(
            _PATH_SEGMENT.fullmatch(s) and s not in (".", "..") for s in segments
        ):
            raise ValueError(f"bad API endpoint {endpoint!r}")
        joined = BaseUrl(self.scheme, self.host, self.port, "/".join([self.path, *segments]))
        return str(joined)

    def covers(self, other: "BaseUrl") -> bool:
        """other is this URL or lies below it (same origin, path at a segment boundary)."""
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        return other.path == self.path or other.path.startswith(self.path + "/")


def parse_base_url(url: str) -> BaseUrl:
    """A BaseUrl, or UrlRefused naming the rule the text breaks."""
    if len(url) > MAX_URL_LENGTH:
        raise UrlRefused(f"longer than {MAX_URL_LENGTH} characters")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise UrlRefused("whitespace or control characters are not allowed")
    if "#" in url:
        raise UrlRefused("a fragment ('#') is not allowed")
    if "?" in url:
        raise UrlRefused("a query string ('?') is not allowed")
    if "%" in url:
        raise UrlRefused("percent escapes are not allowed")
    if "\\" in url:
        raise UrlRefused("backslashes are not allowed")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise UrlRefused(f"not a URL ({error})") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise UrlRefused("the scheme must be http or https")
    if "@" in parts.netloc:
        raise UrlRefused("userinfo (user:password@) is not allowed")
    host = (parts.hostname or "").lower()
    if not host:
        raise UrlRefused("no host")
    path = parts.path.rstrip("/")
    segments = path.split("/")[1:] if path else []
    for segment in segments:
        if segment in (".", "..") or not _PATH_SEGMENT.fullmatch(segment):
            raise UrlRefused(
                "the path may hold only letters, digits and -._~ between single slashes, and no . or .. segments"
            )
    return BaseUrl(scheme, host, port if port is not None else _DEFAULT_PORTS[scheme], path)


@dataclass(frozen=True)
class PrometheusUrlPolicy:
    """Which Prometheus URLs the operator may query: its default one and the allowed ones."""

    default: BaseUrl | None = None
    allowed: tuple[BaseUrl, ...] = ()

    @classmethod
    def from_settings(
        cls, default: str | None, allowed: tuple[str, ...] = ()
    ) -> "PrometheusUrlPolicy":
        """Raises UrlRefused (naming the entry) when an admin-given URL is malformed."""
        entries = []
        # Entries are named by position, not quoted: a refused one may hold a password.
        for number, url in enumerate(allowed, 1):
            try:
                entries.append(parse_base_url(url))
            except UrlRefused as error:
                raise UrlRefused(f"allowed Prometheus URL #{number}: {error}") from None
        base = None
        if default:
            try:
                base = parse_base_url(default)
            except UrlRefused as error:
                raise UrlRefused(f"the default Prometheus URL: {error}") from None
        return cls(base, tuple(entries))

    def resolve(self, spec_url: str | None) -> BaseUrl | None:
        """The base URL a sweep reads from: its own (when allowed), else the default.

        Raises UrlRefused with a message naming the field and the rule.
        """
        if spec_url is None:
            return self.default
        try:
            wanted = parse_base_url(spec_url)
        except UrlRefused as error:
            raise UrlRefused(f"{FIELD}: {error}") from None
        rules = [*([self.default] if self.default else []), *self.allowed]
        if any(rule.covers(wanted) for rule in rules):
            return wanted
        # The allowed URLs are the admin's: not listed to tenants.
        raise UrlRefused(
            f"{FIELD}: {wanted} is not on the operator's allow-list of Prometheus URLs "
            "(it needs the scheme, host and port of an allowed URL and a path at or below "
            "its path); ask the cluster admin to add it (chart value prometheus.allowedUrls)"
        )

    def problem(self, spec_url: str | None) -> str | None:
        """Why a sweep's URL is refused, or None."""
        try:
            self.resolve(spec_url)
        except UrlRefused as error:
            return str(error)
        return None
