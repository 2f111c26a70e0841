"""A content filter the tests' servers load by import path (content_filter.filters):
it rewrites British spelling in the input and redacts a codename in the reply."""

from __future__ import annotations

from assistd.core.content_filter import PASS, Stage, Verdict
from assistd.settings import Settings


class Rewriter:
    name = "rewriter"

    async def check(self, stage: Stage, text: str) -> Verdict:
        old, new = ("colour", "color") if stage == "input" else ("BLUEBIRD", "[redacted]")
        return Verdict("rewrite", text.replace(old, new)) if old in text else PASS


def rewriter(settings: Settings) -> Rewriter:
    return Rewriter()
