"""Reading the server's /metrics: scrape it, and pick one sample's value."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import RunningServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: RunningServer, key: str | None = None) -> Samples:
    """Every sample /metrics shows now, by name and labels (with the admin key)."""
    headers = {"Authorization": f"Bearer {key or server.admin_key}"}
    answer = httpx.get(f"{server.base_url}/metrics", headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain"), answer.headers
    return parse(answer.text)


def parse(text: str) -> Samples:
    """Prometheus's text format, by sample name and labels."""
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples named `name` whose labels include `labels` (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)
