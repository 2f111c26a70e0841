"""A real HTTP server speaking the common POST /rerank (Cohere, Jina, TEI), for the
reranker's tests.

It scores each document by the share of the query's words it contains (the same as the
search's keyword side would, so tests pick documents whose order it reverses), records each
request, and can be told to fail, to answer garbage, or to give raw logits."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def overlap(query: str, document: str) -> float:
    words = set(query.lower().split())
    return len(words & set(document.lower().split())) / max(len(words), 1)


class FakeRerank:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.fail_with: int | None = None
        self.answer: Any = None  # when set, sent as the body instead of real results
        self.logits = False  # scores as unbounded logits (TEI with raw_scores) instead
        self.prefer: str | None = None  # a word whose documents it ranks first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append(
                    {"path": self.path, "auth": self.headers.get("Authorization"), **body}
                )
                if outer.fail_with is not None:
                    self._send(outer.fail_with, {"message": "reranker says no"})
                    return
                if outer.answer is not None:
                    self._send(200, outer.answer)
                    return
                self._send(200, {"results": outer.results(body)})

            def _send(self, status: int, payload: Any) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def results(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        scored = []
        for index, doc in enumerate(body["documents"]):
            score = overlap(body["query"], doc) * 0.5
            if self.prefer and self.prefer in doc.lower().split():
                score += 0.5
            scored.append(
                {"index": index, "relevance_score": score * 16 - 8 if self.logits else score}
            )
        scored.sort(key=lambda r: -r["relevance_score"])
        return scored[: body.get("top_n") or len(scored)]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def start(self) -> FakeRerank:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
