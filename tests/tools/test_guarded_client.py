"""The guarded httpx2 client that libraries drive (the MCP SDK): every request it sends
is checked and pinned like OutboundClient's own, stays on one origin, and has its body
capped. Each refusal is proven by a listener that got no connection."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx2
import pytest

from assistd.settings import OutboundSettings
from assistd.tools.http import OutboundClient, OutboundRefused, OutboundTooLarge
from tests.support.listener import Answer, listener


@pytest.fixture
async def allowed() -> AsyncIterator[OutboundClient]:
    client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"]))
    yield client
    await client.close()


async def test_loopback_is_refused_without_the_allow_setting() -> None:
    outbound = OutboundClient(OutboundSettings())
    with listener() as target:
        async with outbound.guarded_http_client(target.url) as client:
            with pytest.raises(httpx2.ConnectError, match="loopback") as refused:
                await client.get(f"{target.url}/mcp")
        assert isinstance(refused.value, OutboundRefused)
        assert target.connections == 0
    await outbound.check("http://93.184.215.14/")  # a public address passes
    with pytest.raises(OutboundRefused, match="loopback"):
        await outbound.check("http://localhost:8080/mcp")
    await outbound.close()


async def test_an_allowed_request_keeps_the_name_and_headers(allowed: OutboundClient) -> None:
    with listener(lambda _: Answer(body=b"ok")) as target:
        url = f"http://localhost:{target.port}"
        async with allowed.guarded_http_client(url, headers={"X-Key": "k"}) as client:
            response = await client.get(f"{url}/path?q=1")
        assert response.text == "ok"
        assert str(response.request.url) == f"{url}/path?q=1"  # the caller's URL, not the IP
        [seen] = target.seen
        assert seen.path == "/path?q=1"
        assert seen.headers["Host"] == f"localhost:{target.port}"
        assert seen.headers["X-Key"] == "k"


async def test_no_request_leaves_the_origin(allowed: OutboundClient) -> None:
    with listener() as other, listener() as home:
        async with allowed.guarded_http_client(home.url) as client:
            with pytest.raises(OutboundRefused, match="refused to leave"):
                await client.get(f"{other.url}/")
        assert other.connections == 0


async def test_a_redirect_off_the_origin_is_not_followed(allowed: OutboundClient) -> None:
    with (
        listener() as other,
        listener(lambda _: Answer(307, b"", {"Location": f"{other.url}/x"})) as home,
    ):
        async with allowed.guarded_http_client(home.url) as client:
            with pytest.raises(OutboundRefused, match="refused to leave"):
                await client.get(f"{home.url}/", follow_redirects=True)
        assert home.connections == 1 and other.connections == 0


async def test_a_body_over_the_cap_is_cut_off(allowed: OutboundClient) -> None:
    with listener(lambda _: Answer(body=b"x" * 5000)) as target:
        async with allowed.guarded_http_client(target.url, max_bytes=1000) as client:
            with pytest.raises(OutboundTooLarge, match="larger than 1000 bytes"):
                await client.get(target.url)
