"""Keyword-index text: CJK runs spelled as overlapping character bigrams.

Neither FTS5's unicode61 tokenizer nor PostgreSQL's parser splits Chinese or Japanese into
words, so a run like 向量数据库 would be one unsearchable token. As bigrams (向量 量数 数据
据库) it matches a query's bigrams: the usual way to index CJK without a dictionary.

A query loses its function words first (English stop words; Chinese question words and
particles, which also stop bigrams from spanning them): a question's "how do I" or
"怎样…呢" matched any chunk that happened to contain them, and BM25 weighs such rare-in-
the-corpus words highly. The index keeps every word.
"""

from __future__ import annotations

import re

# Han (with extensions A and compatibility), Hiragana, Katakana, Hangul.
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]+")
_WORDS = re.compile(r"\w+")
MAX_QUERY_TERMS = 64
RANK_BUDGET = 2000  # rows a keyword search ranks, past its rarest word's (see above)
# The common English stop-word list (NLTK's, less its contractions' fragments).
_STOP_TEXT = """
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves
"""
STOP_WORDS = frozenset(_STOP_TEXT.split())
# Chinese question words, pronouns and particles: what a question wraps its content in.
# Single characters only where they are seldom part of a word (not 用, 在, 要: 可用, 存在).
_CJK_STOP = re.compile(
    "怎么样|怎么|怎样|如何|什么|哪个|哪些|哪里|为什么|是否|能否|能不能|可以|应该|请问|"
    "我们|你们|一下|我|你|吗|呢|吧|啊|呀|的|了"
)


def _bigrams(match: re.Match[str]) -> str:
    run = match.group(0)
    if len(run) == 1:
        return f" {run} "
    return " " + " ".join(run[i : i + 2] for i in range(len(run) - 1)) + " "


def index_terms(text: str) -> str:
    """The text as the keyword index stores it."""
    return _CJK_RUN.sub(_bigrams, text)


def query_terms(query: str) -> list[str]:
    """The query's distinct content words (CJK as bigrams), at most MAX_QUERY_TERMS, in
    order; all of its words when it has nothing but function words."""
    content = _terms(_CJK_STOP.sub(" ", query), drop=STOP_WORDS)
    return (content or _terms(query, drop=frozenset()))[:MAX_QUERY_TERMS]


def _terms(query: str, drop: frozenset[str]) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORDS.findall(index_terms(query).lower()):
        if word not in drop:
            seen.setdefault(word, None)
    return list(seen)


def fts5_query(terms: list[str]) -> str:
    """Any of the terms (BM25 ranks chunks with more, and rarer, ones first)."""
    return " OR ".join(f'"{t}"' for t in terms)


def selective(terms: list[str], matches: list[int], budget: int = RANK_BUDGET) -> list[str]:
    """The terms to rank by, in query order: rarest first while the rows they match
    (`matches`, per term, counted up to budget + 1) fit the budget; the rarest always."""
    kept: set[int] = set()
    total = 0
    for i in sorted(range(len(terms)), key=lambda i: matches[i]):
        if kept and total + matches[i] > budget:
            break
        kept.add(i)
        total += matches[i]
    return [t for i, t in enumerate(terms) if i in kept]
