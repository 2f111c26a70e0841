"""Rebuilds the evaluation set's documents from Debian's packages (see README.md).

    apt-get download python3.11-doc wordnet-base manpages-zh
    for d in *.deb; do dpkg-deb -x "$d" root; done
    python bench/data/knowledge_eval/extract.py root     # needs lxml and groff

Writes python.jsonl, wordnet.jsonl and chinese.jsonl beside this file. The questions
(*.questions.jsonl) were written by hand against these documents and are not generated.
"""

from __future__ import annotations

import gzip
import json
import random
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PY_MODULES = [
    "json",
    "pathlib",
    "os.path",
    "shutil",
    "itertools",
    "functools",
    "collections",
    "re",
    "csv",
    "textwrap",
    "heapq",
    "statistics",
    "random",
    "tempfile",
    "glob",
    "bisect",
]
PY_KINDS = {"function", "method", "class", "exception"}
ZH_COMMANDS = [
    "ls",
    "cp",
    "mv",
    "rm",
    "mkdir",
    "chmod",
    "chown",
    "df",
    "du",
    "find",
    "grep",
    "tar",
    "gzip",
    "kill",
    "tail",
    "head",
    "cat",
    "sort",
    "uniq",
    "wc",
    "date",
    "cal",
    "diff",
    "ln",
    "touch",
    "who",
    "uptime",
    "free",
    "ssh",
    "scp",
    "at",
    "sed",
    "cut",
    "echo",
    "env",
    "nohup",
    "sleep",
    "split",
    "file",
    "stat",
    "md5sum",
    "basename",
    "dirname",
    "pwd",
    "tee",
    "xargs",
    "more",
    "nice",
    "chgrp",
    "hostname",
    "uname",
    "id",
    "last",
    "seq",
    "factor",
    "expr",
    "paste",
    "fold",
    "nl",
    "od",
    "base64",
    "bzip2",
    "dd",
    "sync",
    "timeout",
]
ZH_ADMIN = [
    "ping",
    "shutdown",
    "ifconfig",
    "netstat",
    "fdisk",
    "mkfs",
    "dmesg",
    "route",
    "swapon",
    "vmstat",
    "tcpdump",
    "umount",
    "chroot",
]
ZH_PAGES = [f"{p}.1" for p in ZH_COMMANDS] + [f"{p}.8" for p in ZH_ADMIN]


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).replace("¶", "").strip()


def python_docs(root: Path) -> Iterator[dict[str, str]]:
    """One document per function, method, class or exception entry, its text cut near 450
    characters at a sentence end; methods name their class."""
    from lxml import html

    folder = root / "usr/share/doc/python3.11/html/library"
    for module in PY_MODULES:
        for dl in html.parse(str(folder / f"{module}.html")).iter("dl"):
            kind = (dl.get("class") or "").split()
            dt, dd = dl.find("dt"), dl.find("dd")
            if kind[:1] != ["py"] or len(kind) < 2 or kind[1] not in PY_KINDS:
                continue
            if dt is None or dd is None or not dt.get("id"):
                continue
            ident, sig = dt.get("id"), _clean(dt.text_content())
            if not sig.removeprefix("class ").removeprefix("exception ").startswith(module):
                sig = f"{ident}: {sig}"
            keep = [c for c in dd if c.tag != "dl" and "highlight" not in (c.get("class") or "")]
            body = " ".join(p for p in (_clean(c.text_content()) for c in keep) if p)
            if len(body) < 60:
                continue
            if len(body) > 450:
                cut = body[:450]
                body = cut[: cut.rfind(". ") + 1] or cut
            yield {"id": f"py:{ident}", "title": ident, "text": f"{sig}\n\n{body}"}


def _wordnet_common(folder: Path, pos: str) -> set[str]:
    """Offsets of each lemma's first sense when the lemma was sense-tagged 4 times or more."""
    common = set()
    for line in (folder / f"index.{pos}").read_text(encoding="latin-1").splitlines():
        if line.startswith(" "):
            continue
        f = line.split()
        pointers = int(f[3])
        if int(f[5 + pointers]) >= 4:
            common.add(f[6 + pointers])
    return common


def wordnet_docs(root: Path) -> Iterator[dict[str, str]]:
    """300 common synsets (230 nouns, 70 verbs, seeded), each its lemmas and gloss."""
    folder, rng, picked = root / "usr/share/wordnet", random.Random(11), []
    for pos, tag, count in (("noun", "n", 230), ("verb", "v", 70)):
        common, pool = _wordnet_common(folder, pos), []
        for line in (folder / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith(" "):
                continue
            data, _, gloss = line.partition("|")
            f = data.split()
            words = [re.sub(r"\(.*\)$", "", f[4 + 2 * i]) for i in range(int(f[3], 16))]
            gloss = gloss.split('; "')[0].strip()
            if f[0] in common and 40 <= len(gloss) <= 220:
                pool.append((f"wn:{words[0]}.{tag}.{f[0]}", words, gloss, pos))
        picked += rng.sample(pool, count)
    for ident, words, gloss, pos in sorted(picked):
        lemmas = ", ".join(w.replace("_", " ") for w in words)
        yield {
            "id": ident,
            "title": words[0].replace("_", " "),
            "text": f"{lemmas} ({pos}): {gloss}",
        }


def _man_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    name = None
    for line in text.splitlines():
        if line and not line.startswith(" "):
            name = line.strip()
            sections.setdefault(name, [])
        elif name:
            sections[name].append(line.strip())
    return sections


def _paragraphs(lines: list[str]) -> list[str]:
    joined = "\n".join(lines).split("\n\n")
    return [_clean(p) for p in joined if _clean(p)]


def _pack(paragraphs: list[str], limit: int = 230) -> list[str]:
    out, current = [], ""
    for p in (p[:limit] for p in paragraphs):
        if current and len(current) + len(p) + 1 > limit:
            out.append(current)
            current = p
        else:
            current = f"{current}\n{p}".strip()
    return [*out, current] if current else out


def chinese_docs(root: Path) -> Iterator[dict[str, str]]:
    """One document per man page: its NAME line, then its first two passages of about 230
    characters from DESCRIPTION and OPTIONS (paragraphs holding Chinese)."""
    for page in ZH_PAGES:
        section = page.rsplit(".", 1)[1]
        source = gzip.decompress(
            (root / f"usr/share/man/zh_CN/man{section}/{page}.gz").read_bytes()
        )
        rendered = subprocess.run(
            ["groff", "-k", "-Tutf8", "-mandoc", "-rLL=3000n", "-dAD=l", "-P-cbou"],
            input=source, capture_output=True, check=False,
        ).stdout.decode("utf-8", "replace")  # fmt: skip
        secs = _man_sections(rendered)

        def find(*names: str, s: dict[str, Any] = secs) -> list[str]:
            def named(k: str, n: str) -> bool:  # Chinese headings anywhere, English first
                return n in k if not n.isascii() else k.upper().startswith(n)

            key = next((k for k in s if any(named(k, n) for n in names)), "")
            return list(s.get(key, []))

        title = " ".join(_paragraphs(find("名称", "NAME"))[:1]) or page.rsplit(".", 1)[0]
        paras = _paragraphs(find("描述", "说明", "DESCRIPTION")) + _paragraphs(
            find("选项", "OPTIONS")
        )
        body = "\n".join(_pack([p for p in paras if re.search(r"[\u4e00-\u9fff]", p)])[:2])
        if body:
            yield {"id": f"zh:{page}", "title": title[:80], "text": f"{title}\n{body}"}


def main() -> None:
    root = Path(sys.argv[1])
    for name, docs in (
        ("python", python_docs),
        ("wordnet", wordnet_docs),
        ("chinese", chinese_docs),
    ):
        rows = [json.dumps(d, ensure_ascii=False) for d in docs(root)]
        (HERE / f"{name}.jsonl").write_text("\n".join(rows) + "\n")
        print(f"{name}: {len(rows)} documents")


if __name__ == "__main__":
    main()
