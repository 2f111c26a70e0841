"""The guarded outbound client: caller-given URLs reach only public addresses (or the
operator's allowed networks), redirects are checked again, and a response is bounded in
size and time. Each refusal is proven by a listener that got no connection at all."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import pytest

from assistd.settings import OutboundSettings
from assistd.tools.http import (
    OutboundClient,
    OutboundRefused,
    OutboundTimeout,
    OutboundTooLarge,
)
from tests.support.listener import Answer, listener


@pytest.fixture
async def guarded() -> AsyncIterator[OutboundClient]:
    client = OutboundClient(OutboundSettings())
    yield client
    await client.close()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.parametrize(
    "host_form",
    ["127.0.0.1", "2130706433", "0x7f.1", "localhost", "[::ffff:127.0.0.1]", "127.1"],
)
async def test_loopback_in_any_spelling_is_refused(guarded: OutboundClient, host_form: str) -> None:
    with listener() as target:
        with pytest.raises(OutboundRefused, match="refused to connect"):
            await guarded.request("GET", f"http://{host_form}:{target.port}/x")
        assert target.connections == 0


@pytest.mark.skipif(not _ipv6_loopback(), reason="this machine has no IPv6 loopback")
async def test_ipv6_loopback_is_refused(guarded: OutboundClient) -> None:
    with listener(host="::1") as target:
        with pytest.raises(OutboundRefused):
            await guarded.request("GET", f"{target.url}/x")
        assert target.connections == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://10.1.2.3/", "http://169.254.169.254/latest/meta-data/", "http://192.168.0.1/",
        "http://172.16.5.4/", "http://100.64.0.1/", "http://[fd00:ec2::254]/",
        "http://[fe80::1]/", "http://[64:ff9b::a9fe:a9fe]/", "http://[2002:7f00:1::]/",
        "http://0.0.0.0/", "http://224.0.0.1/", "http://240.0.0.1/",
    ],
)  # fmt: skip
async def test_private_and_special_ranges_are_refused(guarded: OutboundClient, url: str) -> None:
    with pytest.raises(OutboundRefused, match="private, loopback, link-local or reserved"):
        await guarded.request("GET", url)


@pytest.mark.parametrize(
    "url, reason",
    [
        ("ftp://example.com/", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("http://user:pw@example.com/", "credentials"),
        ("http://93.184.215.14:22/", "port 22 is not allowed"),
    ],
)
async def test_scheme_credentials_and_ports(guarded: OutboundClient, url: str, reason: str) -> None:
    with pytest.raises(OutboundRefused, match=reason):
        await guarded.request("GET", url)


async def test_allowed_network_is_reached_on_any_port() -> None:
    client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"]))
    try:
        with listener(lambda seen: Answer(body=b'{"ok": true}')) as target:
            response = await client.request("GET", f"{target.url}/hello?a=1", params={"b": "2"})
            assert (response.status, response.json()) == (200, {"ok": True})
            [seen] = target.seen
            assert seen.path == "/hello?a=1&b=2"
            assert seen.headers["Host"] == f"127.0.0.1:{target.port}"
    finally:
        await client.close()


async def test_trusted_operator_endpoint_needs_no_allowance(guarded: OutboundClient) -> None:
    with listener() as target:
        response = await guarded.request("GET", f"{target.url}/", trusted=True)
        assert response.status == 200


async def test_redirect_to_a_private_address_is_refused() -> None:
    client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.2/32"]))
    try:
        with (
            listener() as inner,
            listener(
                lambda _: Answer(302, b"", {"Location": f"http://127.0.0.1:{inner.port}/secret"}),
                host="127.0.0.2",
            ) as allowed,
        ):
            with pytest.raises(OutboundRefused, match=r"127\.0\.0\.1"):
                await client.request("GET", f"{allowed.url}/go")
            assert allowed.connections == 1 and inner.connections == 0
    finally:
        await client.close()


async def test_redirects_are_followed_and_capped() -> None:
    client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"], max_redirects=2))
    try:
        with listener(
            lambda seen: Answer(200, b"done") if seen.path == "/3" else Answer(
                307, b"", {"Location": f"/{int(seen.path[1:]) + 1}"}
            )
        ) as target:  # fmt: skip
            assert (await client.request("GET", f"{target.url}/1")).text == "done"
            with pytest.raises(OutboundRefused, match="redirected more than 2 times"):
                await client.request("GET", f"{target.url}/0")
    finally:
        await client.close()


async def test_authorization_is_dropped_across_origins() -> None:
    client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"]))
    try:
        with (
            listener() as other,
            listener(lambda _: Answer(302, b"", {"Location": f"{other.url}/landing"})) as first,
        ):
            await client.request("GET", f"{first.url}/", headers={"Authorization": "Bearer s3"})
            assert first.seen[0].headers.get("Authorization") == "Bearer s3"
            assert "Authorization" not in other.seen[0].headers
    finally:
        await client.close()


async def test_oversized_response_is_cut_off() -> None:
    client = OutboundClient(
        OutboundSettings(allow_networks=["127.0.0.0/8"], max_response_bytes=1000)
    )
    try:
        with (
            listener(lambda _: Answer(body=b"x" * 5000)) as target,
            pytest.raises(OutboundTooLarge, match="larger than 1000 bytes"),
        ):
            await client.request("GET", target.url)
    finally:
        await client.close()


async def test_a_response_that_never_finishes_times_out() -> None:
    client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"], read_timeout_s=5))
    try:
        with (
            listener(lambda _: Answer(body=b"{", stall_s=3)) as target,
            pytest.raises(OutboundTimeout, match=r"did not answer within 0\.5 seconds"),
        ):
            await client.request("GET", target.url, timeout_s=0.5)
    finally:
        await client.close()
