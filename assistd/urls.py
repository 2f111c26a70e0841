"""URLs fit to print: credentials in them replaced by ***."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
_SECRET_WORDS = ("key", "token", "secret", "password", "sig")


def _masked_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    if not any(word in name.lower() for name, _ in pairs for word in _SECRET_WORDS):
        return query
    masked = [
        (name, MASK if any(word in name.lower() for word in _SECRET_WORDS) else value)
        for name, value in pairs
    ]
    return urlencode(masked, safe="*")


def redact_url(url: str, *, keep_user: bool = True) -> str:
    """`url` with its password (and any query value named like a key or token) masked.
    With keep_user the user name stays, so an operator can tell which database account is
    meant; without it the whole user part goes (a model endpoint's token may sit there)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user, has_password, _ = userinfo.partition(":")
        if not keep_user:
            netloc = f"{MASK}@{host}"
        elif has_password:
            netloc = f"{user}:{MASK}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, query=_masked_query(parts.query)))
