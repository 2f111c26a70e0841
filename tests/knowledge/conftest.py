"""Knowledge tests run on SQLite (FTS5 + sqlite-vec), on the machine's PostgreSQL (whatever
it has: pgvector, or the exact real[] search without it), and on a PostgreSQL with pgvector
(an embedded one when the machine's lacks it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import pytest_asyncio

from assistd.core.knowledge import KnowledgeService
from assistd.retrieval.registry import EmbedderRegistry
from assistd.settings import Settings
from assistd.store.sql import SqlStore
from tests.conftest import database_url
from tests.support.postgres import database_or_skip

BACKENDS = ["sqlite", "postgres", "pgvector"]


@pytest.fixture(scope="session")
def pgvector_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with database_or_skip(tmp_path_factory.mktemp("pgv"), vector=True) as url:
        yield url


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Also on PostgreSQL with pgvector; `store` (tests/conftest.py) opens these."""
    return Settings(data_dir=tmp_path, database_url=database_url(request.param, request))


@pytest.fixture(scope="session")
def embedders() -> EmbedderRegistry:
    return EmbedderRegistry()


@pytest_asyncio.fixture
async def knowledge(store: SqlStore, embedders: EmbedderRegistry) -> KnowledgeService:
    return KnowledgeService(store, embedders)


def distinct_vectors(n: int, seed: int = 0) -> list[list[float]]:
    """n different unit vectors. Tests whose vectors do not matter use these rather than
    one vector repeated: on PostgreSQL every store of a dimension shares one HNSW graph,
    and a thousand identical points in it trapped the graph walks of other tests'
    searches (their recall then depended on the order the tests ran in)."""
    v = np.random.default_rng(seed).standard_normal((n, 384))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).tolist()
