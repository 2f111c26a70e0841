"""assistd: a self-hosted Assistant API server (DashScope and OpenAI Assistants wire protocols)."""

__version__ = "0.1.0"
