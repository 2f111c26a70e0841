"""The baseline: a bare FastAPI app whose endpoints return a constant, served exactly the
way `assistd serve` serves assistd (uvicorn.run with the same arguments, so the same
uvicorn, loop and HTTP implementation: `auto`, i.e. uvloop and httptools when installed).

Run as `python -m bench.baseline_app --port N`.
"""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

CONSTANT = b'{"ok":true}'

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/const")
async def get_constant() -> Response:
    return Response(CONSTANT, media_type="application/json")


@app.post("/const")
async def post_constant(request: Request) -> Response:
    await request.body()  # read the body, as a real create endpoint must
    return Response(CONSTANT, media_type="application/json")


@app.get("/healthz")
async def healthz() -> Response:
    return Response(CONSTANT, media_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The same call as assistd.cli.serve (log_level is assistd's default, "info").
    uvicorn.run(app, host=args.host, port=args.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
