"""The teacher endpoint's URL: scheme check, loopback test, and redaction.

A `base_url` may carry credentials (`https://user:pass@host/v1`, `...?key=...`). They must
never reach anything stored or shown: `redact_url` drops the userinfo and blanks every query
value; `redact_text` does the same to every URL inside a message and removes known secrets
(the API key) wherever they appear. Standard library only, so `skipthink.config` can use it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

ALLOWED_SCHEMES = ("http", "https")
REDACTED = "REDACTED"
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def check_base_url(url: str) -> str:
    """`url` itself when it is an http(s) URL with a host, else ValueError (the message is redacted)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a malformed port)
    except ValueError:
        raise ValueError(f"not a valid URL: {redact_url(url)!r}") from None
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise ValueError(f"scheme must be http or https, got {parts.scheme or 'none'!r} in {redact_url(url)!r}")
    if not parts.hostname:
        raise ValueError(f"no host in {redact_url(url)!r}")
    return url


def redact_url(url: str) -> str:
    """The URL without user:password and with every query value replaced by REDACTED."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.hostname or ""
    if ":" in netloc:  # an IPv6 literal
        netloc = f"[{netloc}]"
    if port:
        netloc += f":{port}"
    query = urlencode([(name, REDACTED) for name, _ in parse_qsl(parts.query, keep_blank_values=True)], safe=REDACTED)
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with each URL redacted and each of `secrets` (non-empty ones) replaced by REDACTED."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
