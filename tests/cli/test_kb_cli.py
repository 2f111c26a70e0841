"""`assistd kb`: knowledge bases from the command line, run as a subprocess on a fresh
database of each backend. What it prints (progress, the search table, one-line refusals)
and what it leaves in the store (vector stores, files, chunks)."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

from assistd.settings import Settings
from assistd.store.factory import open_store
from tests.cli import test_cli as cli
from tests.cli.test_cli import Fresh, assistd, succeeds
from tests.knowledge.test_ingest_and_search import index_rows
from tests.retrieval import fixtures

fresh = cli.fresh  # the fixture: an empty database of each backend

# Page 1 fills a 100-token chunk of its own: the diesel sentence's chunk starts on page 2.
INTRO = " ".join(["Machines turn energy into work."] * 16)
KB_HEADER = ["ID", "NAME", "FILES", "COMPLETED", "FAILED", "BYTES", "EMBEDDER"]
GARDEN = [
    "Tomatoes need six hours of direct sunlight a day.",
    "Water tomato plants deeply twice a week; shallow watering weakens the roots.",
]


def _env(fresh: Fresh) -> dict[str, str]:
    return fresh.env(COLUMNS="200")  # rich lays the table out this wide off a terminal


def _files(tmp_path: Path) -> dict[str, Path]:
    made = {
        "engines.pdf": fixtures.pdf([INTRO, "A diesel engine ignites fuel by compression."]),
        "garden.docx": fixtures.docx(GARDEN),
        "bikes.md": b"# Bicycles\n\nA bicycle has two wheels, pedals and a chain.",
        "empty.txt": b"",
        "blob.bin": b"\x00\x01\x02 not text",
    }
    for name, content in made.items():
        (tmp_path / name).write_bytes(content)
    return {name: tmp_path / name for name in made}


def _kb_rows(env: dict[str, str], workspace: str) -> dict[str, list[str]]:
    """`assistd kb list`, by name, below its header row."""
    header, *rows = [
        line.split("\t") for line in succeeds("kb", "list", "--workspace", workspace, env=env)
    ]
    assert header == KB_HEADER
    return {row[1]: row for row in rows}


def _refused(*args: str, env: dict[str, str]) -> str:
    """A non-zero exit whose last line says why in one line; no traceback."""
    done = assistd(*args, env=env)
    assert done.returncode != 0, done.stdout
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: "), done.stderr
    return last


def _chunks(fresh: Fresh) -> dict[str, int]:
    async def count() -> dict[str, int]:
        store = open_store(Settings(data_dir=fresh.data_dir, database_url=fresh.database_url))
        try:
            return await index_rows(store)
        finally:
            await store.close()

    return asyncio.run(count())


def test_create_search_add_and_delete_a_knowledge_base(fresh: Fresh, tmp_path: Path) -> None:
    env, files = _env(fresh), _files(tmp_path)
    succeeds("workspace", "create", "docs", env=env)
    done = assistd(
        "kb",
        "create",
        "manuals",
        "--workspace",
        "docs",
        "--chunk-tokens",
        "100",
        "--overlap-tokens",
        "0",
        str(files["engines.pdf"]),
        str(files["garden.docx"]),
        env=env,
    )
    assert done.returncode == 0, done.stderr
    made = re.fullmatch(
        r"created knowledge base manuals \((vs_\w+)\) in workspace docs: 2 files, (\d+) chunks",
        done.stdout.strip(),
    )
    assert made, done.stdout
    vs_id = made.group(1)
    # The progress display: a bar per file and one overall, each ended full.
    bars = [re.sub(r"\s+", " ", line).strip() for line in done.stderr.splitlines()]
    assert any(re.match(r"all files .* 2/2 ", line) for line in bars), done.stderr
    for name in ("engines.pdf", "garden.docx"):
        assert any(re.match(rf"{re.escape(name)} .* (\d+)/\1 ", line) for line in bars), bars

    row = _kb_rows(env, "docs")["manuals"]
    assert row[0] == vs_id and row[2:5] == ["2", "2", "0"] and row[6] == "all-MiniLM-L6-v2"
    stored = _chunks(fresh)["chunks"]
    assert stored == int(made.group(2)) > 0

    table = succeeds("kb", "search", "manuals", "what ignites the fuel in a diesel", env=env)
    first = next(line for line in table if re.match(r"^│\s*1 │", line))
    cells = [cell.strip() for cell in first.strip("│").split("│")]
    assert cells[2:4] == ["engines.pdf", "2"], table  # the file and the page it is on
    assert 0 < float(cells[1]) <= 1 and "diesel engine ignites" in cells[4]

    # Added by its id, without naming the workspace.
    added = succeeds("kb", "add", vs_id, str(files["bikes.md"]), env=env)
    assert added == [f"added to knowledge base manuals ({vs_id}): 1 file, 1 chunk"]
    assert _kb_rows(env, "docs")["manuals"][2:5] == ["3", "3", "0"]
    hits = succeeds("kb", "search", vs_id, "how many wheels", "-n", "1", env=env)
    assert any("bikes.md" in line for line in hits), hits

    deleted = succeeds("kb", "delete", "manuals", env=env)
    assert deleted == [f"deleted knowledge base manuals ({vs_id}) from workspace docs"]
    assert _kb_rows(env, "docs") == {}
    assert set(_chunks(fresh).values()) == {0}  # no chunk, keyword entry or vector left


def test_refusals_are_one_line_and_store_nothing(fresh: Fresh, tmp_path: Path) -> None:
    env, files = _env(fresh), _files(tmp_path)
    succeeds("workspace", "create", "docs", env=env)
    bikes = str(files["bikes.md"])
    assert "No workspace found" in _refused(
        "kb", "create", "x", "--workspace", "nope", bikes, env=env
    )
    missing = _refused(
        "kb", "create", "x", "--workspace", "docs", str(tmp_path / "gone.txt"), env=env
    )
    assert missing == f"Error: cannot read {tmp_path / 'gone.txt'}: No such file or directory"
    assert "Is a directory" in _refused(
        "kb", "create", "x", "--workspace", "docs", str(tmp_path), env=env
    )
    unsupported = _refused(
        "kb", "create", "x", "--workspace", "docs", bikes, str(files["blob.bin"]), env=env
    )
    assert unsupported == f"Error: {files['blob.bin']}: files of type '.bin' cannot be searched"
    assert _kb_rows(env, "docs") == {}  # nothing made by a refused command
    for command in (["add", "nokb", bikes], ["search", "nokb", "q"], ["delete", "nokb"]):
        assert _refused("kb", *command, env=env) == "Error: no knowledge base named 'nokb'"

    succeeds("kb", "create", "notes", "--workspace", "docs", bikes, env=env)
    taken = _refused("kb", "create", "notes", "--workspace", "docs", bikes, env=env)
    assert "already has a knowledge base named 'notes'" in taken
    # A file that fails ingestion fails alone, named with its reason; the rest is kept.
    failed = _refused(
        "kb", "add", "notes", str(files["empty.txt"]), str(files["garden.docx"]), env=env
    )
    assert failed == "Error: 1 of 2 failed: empty.txt: the file has no text to search (empty_file)"
    assert _kb_rows(env, "docs")["notes"][2:5] == ["3", "2", "1"]


def test_a_name_in_two_workspaces_needs_the_workspace(fresh: Fresh, tmp_path: Path) -> None:
    env, files = _env(fresh), _files(tmp_path)
    for workspace in ("team-a", "team-b"):
        succeeds("workspace", "create", workspace, env=env)
        succeeds("kb", "create", "notes", "--workspace", workspace, str(files["bikes.md"]), env=env)
    ambiguous = _refused("kb", "search", "notes", "wheels", env=env)
    assert "'notes' names 2 knowledge bases" in ambiguous and "give its id" in ambiguous
    found = succeeds("kb", "search", "notes", "wheels", "--workspace", "team-b", env=env)
    assert any("bikes.md" in line for line in found), found
    succeeds("kb", "delete", "notes", "--workspace", "team-a", env=env)
    assert list(_kb_rows(env, "team-b")) == ["notes"] and _kb_rows(env, "team-a") == {}


def test_kb_help_names_every_command(tmp_path: Path) -> None:
    text = "\n".join(succeeds("kb", "--help", env=Fresh(tmp_path, "").env()))
    for command in ("create", "add", "list", "search", "delete"):
        assert re.search(rf"^\s+{command}\s", text, re.M), text
    assert list(tmp_path.iterdir()) == []
