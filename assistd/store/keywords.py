"""Keyword-index text: CJK runs spelled as overlapping character bigrams.

Neither FTS5's unicode61 tokenizer nor PostgreSQL's parser splits Chinese or Japanese into
words, so a run like 向量数据库 would be one unsearchable token. As bigrams (向量 量数 数据
据库) it matches a query's bigrams: the usual way to index CJK without a dictionary.
"""

from __future__ import annotations

import re

# Han (with extensions A and compatibility), Hiragana, Katakana, Hangul.
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_WORDS = re.compile(r"\w+")
MAX_QUERY_TERMS = 64


def _bigrams(match: re.Match[str]) -> str:
    run = match.group(0)
    if len(run) == 1:
        return f" {run} "
    return " " + " ".join(run[i : i + 2] for i in range(len(run) - 1)) + " "


def index_terms(text: str) -> str:
    """The text as the keyword index stores it."""
    return _CJK_RUN.sub(_bigrams, text)


def query_terms(query: str) -> list[str]:
    """The query's distinct words (CJK as bigrams), at most MAX_QUERY_TERMS, in order."""
    seen: dict[str, None] = {}
    for word in _WORDS.findall(index_terms(query).lower()):
        seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_TERMS]


def fts5_query(terms: list[str]) -> str:
    """Any of the terms (BM25 ranks chunks with more, and rarer, ones first)."""
    return " OR ".join(f'"{t}"' for t in terms)


def tsquery(terms: list[str]) -> str:
    return " | ".join(terms)
