"""Redaction's shortcut: a line with none of the clue words skips the patterns, so it must
never skip a line the patterns would change. Every sample is redacted both ways."""

from __future__ import annotations

import itertools

import pytest

from assistd.logs import _REDACTIONS, redact

SECRETS_SHAPED = [
    "https://user:pass@db.example/x", "postgresql://a:b@127.0.0.1/test",
    "Authorization: Bearer abcdefghijkl", '{"authorization": "Basic dXNlcjpwYXNz"}',
    "bearer 0123456789abcdef", "key sk-live-abcdef123", "api_key=zzz", "API-KEY: zzz",
    "apikey=1", "access_token=t0k", "Token: abc", "secret=shh", '"password": "hunter2"',
    "passwd=pw", "\u017fecret=abcdef", "ACCESS-TOKEN=x", "\ufb01le with @ sign",
]  # fmt: skip
PLAIN = [
    "POST /api/v1/threads/thread_abc/runs 200 3.1ms", "GET /v1/assistants?limit=20 200",
    "run run_123 completed in 1.2 s (12 tokens)", "", "日本語のログ", "skip-list ready",
]  # fmt: skip


def _by_patterns(text: str) -> str:
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


@pytest.mark.parametrize("text", SECRETS_SHAPED + PLAIN)
def test_the_shortcut_changes_nothing(text: str) -> None:
    for variant in {text, text.upper(), text.lower(), text.title()}:
        assert redact(variant) == _by_patterns(variant), variant


def test_secret_shaped_lines_are_still_redacted_inside_other_text() -> None:
    for before, secret in itertools.product(PLAIN, SECRETS_SHAPED[:6]):
        line = f"{before} {secret}"
        assert redact(line) == _by_patterns(line) != line, line


def test_given_secrets_go_even_from_plain_lines() -> None:
    assert redact("the value 5up3r-v4lue here", "5up3r-v4lue") == "the value *** here"
