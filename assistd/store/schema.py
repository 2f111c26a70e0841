"""Table definitions, private to the store. Migrations create exactly these.

Every object table has `seq`, an auto-incrementing integer primary key that gives a
stable creation order (two objects created in the same millisecond still sort), and a
unique public `id`. Every object row carries `workspace_id`; the repositories filter by
it on every statement.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# SQLite only auto-increments an INTEGER PRIMARY KEY (its rowid); PostgreSQL gets BIGINT.
SeqType = BigInteger().with_variant(Integer(), "sqlite")


def _seq() -> Column[int]:
    return Column("seq", SeqType, primary_key=True, autoincrement=True)


def _sampling() -> list[Column[object]]:
    return [
        Column("temperature", Float, nullable=True),
        Column("top_p", Float, nullable=True),
        Column("top_k", Integer, nullable=True),
        Column("max_tokens", Integer, nullable=True),
    ]


workspaces = Table(
    "workspaces",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("thread_ttl_s", BigInteger, nullable=True),  # null: the server's; 0: never
    Column("limits", JSON, nullable=True),  # quotas (core/quotas.py); null: the server's
)

api_keys = Table(
    "api_keys",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    Column("workspace_id", String(64), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),
    Column("name", String(128), nullable=False, default=""),
    Column("admin", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    # Registered from ASSISTD_API_KEY: replaced (revoked) when that variable's key changes.
    Column("bootstrap", Boolean, nullable=False, server_default=false()),
    Column("limits", JSON, nullable=True),  # quotas (core/quotas.py); null: the server's
)

assistants = Table(
    "assistants",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    Column("workspace_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("model", String(256), nullable=False),
    Column("name", Text, nullable=True),
    Column("description", Text, nullable=True),
    Column("instructions", Text, nullable=True),
    Column("tools", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    *_sampling(),
    Column("response_format", JSON, nullable=True),
    Column("vector_store_ids", JSON, nullable=True),  # file_search's stores; null: none
    Index("ix_assistants_ws_seq", "workspace_id", "seq"),
)

assistant_files = Table(
    "assistant_files",
    metadata,
    _seq(),
    Column("workspace_id", String(64), nullable=False),
    Column("assistant_id", String(64), nullable=False),
    Column("file_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ux_assistant_files", "assistant_id", "file_id", unique=True),
    Index("ix_assistant_files_file", "file_id"),
)

threads = Table(
    "threads",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    Column("workspace_id", String(64), nullable=False, index=True),
    Column("created_at", BigInteger, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("file_ids", JSON, nullable=True),  # null: none
    Column("vector_store_ids", JSON, nullable=True),  # file_search's stores; null: none
    # Time to live (core/thread_ttl.py): the last message or run written (null: none
    # since creation), and the thread's own TTL from its metadata (null: the workspace's).
    Column("last_active_at", BigInteger, nullable=True),
    Column("ttl_s", BigInteger, nullable=True),
)

messages = Table(
    "messages",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    Column("workspace_id", String(64), nullable=False),
    Column("thread_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", JSON, nullable=False),
    Column("file_ids", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("assistant_id", String(64), nullable=True),
    Column("run_id", String(64), nullable=True),
    Column("status", String(16), nullable=False),
    Column("completed_at", BigInteger, nullable=True),
    # [{"file_id", "tools": [type]}]; null: the files of file_ids, for no tool in particular
    Column("attachments", JSON, nullable=True),
    Index("ix_messages_thread_seq", "thread_id", "seq"),
)

files = Table(
    "files",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    Column("workspace_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("filename", Text, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("purpose", String(64), nullable=False),
    Column("description", Text, nullable=True),
    Column("md5", String(32), nullable=False),
    # Kept in the database so a file is written in the same transaction as its row and
    # every replica of a scaled-out deployment sees it.
    Column("content", LargeBinary, nullable=False),
    Index("ix_files_ws_seq", "workspace_id", "seq"),
)

runs = Table(
    "runs",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    Column("workspace_id", String(64), nullable=False),
    Column("thread_id", String(64), nullable=False),
    Column("assistant_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(32), nullable=False),
    Column("model", String(256), nullable=False),
    Column("instructions", Text, nullable=True),
    Column("tools", JSON, nullable=False),
    Column("file_ids", JSON, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("required_action", JSON, nullable=True),
    Column("last_error", JSON, nullable=True),
    Column("started_at", BigInteger, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("cancelled_at", BigInteger, nullable=True),
    Column("failed_at", BigInteger, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("usage", JSON, nullable=True),
    *_sampling(),
    Column("options", JSON, nullable=True),  # null: every option at its default
    Column("incomplete_reason", String(32), nullable=True),
    # Which time the run was queued (1 at creation, +1 per submission of tool outputs): a
    # job carries it, so a worker handed a job of an earlier leg lets it go.
    Column("leg", Integer, nullable=False, server_default="1"),
    Column("key_id", String(64), nullable=True),  # the API key that created it
    Index("ix_runs_thread_seq", "thread_id", "seq"),
    Index("ix_runs_status", "status", "expires_at"),
)

run_steps = Table(
    "run_steps",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    Column("workspace_id", String(64), nullable=False),
    Column("run_id", String(64), nullable=False),
    Column("thread_id", String(64), nullable=False),
    Column("assistant_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("type", String(32), nullable=False),
    Column("status", String(32), nullable=False),
    Column("step_details", JSON, nullable=False),
    Column("last_error", JSON, nullable=True),
    Column("usage", JSON, nullable=True),
    Column("completed_at", BigInteger, nullable=True),
    Column("cancelled_at", BigInteger, nullable=True),
    Column("failed_at", BigInteger, nullable=True),
    Column("expired_at", BigInteger, nullable=True),
    Column("metadata", JSON, nullable=False),
    Index("ix_run_steps_run_seq", "run_id", "seq"),
    Index("ix_run_steps_thread", "thread_id"),
)

plugins = Table(
    "plugins",
    metadata,
    _seq(),
    # The plugin id is the tool type assistants name: unique within its workspace only.
    Column("id", String(64), nullable=False),
    Column("workspace_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("description", Text, nullable=False),
    Column("document", Text, nullable=True),
    Column("url", Text, nullable=True),
    Column("auth", JSON, nullable=False),
    Column("header_names", JSON, nullable=False),
    Column("allowed_tools", JSON, nullable=True),
    Column("sealed", Text, nullable=True),  # encrypted credentials (assistd.secrets)
    Index("ux_plugins_ws_id", "workspace_id", "id", unique=True),
    Index("ix_plugins_ws_seq", "workspace_id", "seq"),
)

# Knowledge. A chunk's vector and keyword index live beside these, in per-dialect structures
# the knowledge repository manages by SQL (assistd/store/knowledge.py): on SQLite an FTS5
# table and one sqlite-vec table per dimension, keyed by the chunk's seq; on PostgreSQL a
# pgvector (or real[]) column of `chunks` itself and the keyword postings tables
# (store/pg_keywords.py, migration 0014).

vector_stores = Table(
    "vector_stores",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    Column("workspace_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("name", Text, nullable=True),
    Column("embedder", String(128), nullable=False),
    Column("dimension", Integer, nullable=False),
    Column("max_chunk_tokens", Integer, nullable=False),
    Column("chunk_overlap_tokens", Integer, nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("expires_after", JSON, nullable=True),
    Column("expires_at", BigInteger, nullable=True),
    Column("last_active_at", BigInteger, nullable=True),
    Index("ix_vector_stores_ws_seq", "workspace_id", "seq"),
)

vector_store_files = Table(
    "vector_store_files",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False),  # the file's id
    Column("workspace_id", String(64), nullable=False),
    Column("vector_store_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("last_error", JSON, nullable=True),
    Column("usage_bytes", BigInteger, nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("attributes", JSON, nullable=False),
    Column("max_chunk_tokens", Integer, nullable=False),
    Column("chunk_overlap_tokens", Integer, nullable=False),
    Column("batch_id", String(64), nullable=True),  # the batch that added it, if one did
    Index("ux_vector_store_files_ws_vs_id", "workspace_id", "vector_store_id", "id", unique=True),
    Index("ix_vector_store_files_ws_vs_seq", "workspace_id", "vector_store_id", "seq"),
    Index("ix_vector_store_files_ws_id", "workspace_id", "id"),
    Index("ix_vector_store_files_ws_batch_seq", "workspace_id", "batch_id", "seq"),
)

vector_store_file_batches = Table(
    "vector_store_file_batches",
    metadata,
    _seq(),
    Column("id", String(64), nullable=False, unique=True),
    Column("workspace_id", String(64), nullable=False),
    Column("vector_store_id", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("cancelled", Boolean, nullable=False),
    Index("ix_vector_store_file_batches_ws_vs", "workspace_id", "vector_store_id", "id"),
)

chunks = Table(
    "chunks",
    metadata,
    _seq(),
    Column("workspace_id", String(64), nullable=False),
    Column("vector_store_id", String(64), nullable=False),
    Column("file_id", String(64), nullable=False),
    Column("position", Integer, nullable=False),
    Column("page", Integer, nullable=True),
    Column("tokens", Integer, nullable=False),
    Column("text", Text, nullable=False),
    Index("ix_chunks_ws_vs_file", "workspace_id", "vector_store_id", "file_id", "position"),
)

# Token usage of ended runs by workspace, key, model and UTC day ("YYYY-MM-DD"), written
# in the transaction that ends each run (store/usage.py).
usage_daily = Table(
    "usage_daily",
    metadata,
    _seq(),
    Column("workspace_id", String(64), nullable=False),
    Column("key_id", String(64), nullable=False),  # '': a run made before keys were kept
    Column("model", String(256), nullable=False),
    Column("day", String(10), nullable=False),
    Column("runs", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("total_tokens", BigInteger, nullable=False),
    UniqueConstraint("workspace_id", "key_id", "model", "day", name="uq_usage_daily"),
    Index("ix_usage_daily_day", "day"),
    Index("ix_usage_daily_key_day", "key_id", "day"),
)


# Who called what (store/audit.py). Not an object of a workspace: `workspace` (not
# `workspace_id`) keeps its rows out of a workspace's deletion, which they record.
audit_log = Table(
    "audit_log",
    metadata,
    _seq(),
    Column("at", BigInteger, nullable=False),  # ms
    Column("request_id", String(64), nullable=True),
    Column("key_id", String(64), nullable=True),
    Column("workspace", String(64), nullable=True),
    Column("method", String(8), nullable=False),
    Column("route", String(200), nullable=True),  # the template; null: no route matched
    Column("path", String(300), nullable=False),
    Column("object_ids", Text, nullable=False),  # " id1 id2 ": space-delimited, for LIKE
    Column("status", Integer, nullable=False),
    Column("error_code", String(128), nullable=True),
    Column("body", Text, nullable=True),  # only with `audit_bodies`, redacted and capped
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_workspace_seq", "workspace", "seq"),
)
