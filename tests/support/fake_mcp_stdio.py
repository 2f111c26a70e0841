"""The fake MCP server of tests.support.fake_mcp, over stdio: `python -m` this module."""

from __future__ import annotations

from tests.support.fake_mcp import build_server

if __name__ == "__main__":
    build_server().run("stdio")
