"""The one outbound HTTP client of tools, with a guard against server-side request forgery.

URLs from the operator's configuration (a search provider's base URL) are trusted. URLs
that an API caller or a model can choose (plugin servers, MCP endpoints, images to
download, and every redirect that leaves a trusted origin) are guarded: the name is
resolved once, every address it resolves to must be public (or inside a network the
operator allows), and the connection goes to the address that was checked, so a DNS
answer that changes between check and connect cannot redirect it. Redirects are followed
by hand, each checked again. Every response is read under a size cap and a total deadline.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx2

from assistd.settings import OutboundSettings

log = logging.getLogger("assistd.tools.http")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
REDIRECTS = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "assistd-tools/1"

# Special-purpose ranges (IANA registries) no caller-given URL may reach, beyond what
# `ipaddress` already flags as private, loopback, link-local, multicast or reserved.
_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32", "100::/64",
    )
)  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class OutboundError(Exception):
    """A request that did not complete; str() is a sentence a model can act on."""


class OutboundRefused(OutboundError):
    """The URL is not allowed: scheme, port, credentials or a non-public address."""


class OutboundTimeout(OutboundError):
    pass


class OutboundTooLarge(OutboundError):
    pass


@dataclass(frozen=True, slots=True)
class OutboundResponse:
    status: int
    headers: httpx2.Headers
    content: bytes
    url: str  # where the response came from, after redirects

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.content)


class AddressPolicy:
    """Which addresses a guarded URL may reach."""

    def __init__(self, allow_networks: Iterable[str], allow_ports: Iterable[int]) -> None:
        self.allowed = tuple(ipaddress.ip_network(n, strict=False) for n in allow_networks)
        self.ports = frozenset({80, 443, *allow_ports})

    def refusal(self, address: IPAddress, port: int) -> str | None:
        """Why `address`:`port` may not be reached, or None when it may."""
        if any(address in network for network in self.allowed):
            return None  # the operator's own networks: any port
        embedded = _embedded_ipv4(address)
        if embedded is not None and embedded != address:
            return self.refusal(embedded, port)
        if _is_special(address):
            return f"{address} is a private, loopback, link-local or reserved address"
        if port not in self.ports:
            return f"port {port} is not allowed (only {', '.join(map(str, sorted(self.ports)))})"
        return None


def _embedded_ipv4(address: IPAddress) -> IPAddress | None:
    """The IPv4 address inside an IPv4-mapped, 6to4 or NAT64 IPv6 address."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _is_special(address: IPAddress) -> bool:
    return (
        not address.is_global
        or address.is_multicast
        or any(address in network for network in _BLOCKED if network.version == address.version)
    )


@dataclass(frozen=True, slots=True)
class _Target:
    """Where one hop connects: the URL rewritten to the checked address, and the headers
    and extensions that keep the name for Host, SNI and certificate checks."""

    url: httpx2.URL
    headers: dict[str, str]
    extensions: dict[str, Any]


class OutboundClient:
    """Shared by every tool: one pooled client (HTTP/2 where the server offers it)."""

    def __init__(self, settings: OutboundSettings) -> None:
        self.settings = settings
        self.policy = AddressPolicy(settings.allow_networks, settings.allow_ports)
        self._client = httpx2.AsyncClient(
            http2=True,
            trust_env=False,  # no environment proxies
            follow_redirects=False,
            timeout=httpx2.Timeout(settings.read_timeout_s, connect=settings.connect_timeout_s),
            limits=httpx2.Limits(max_connections=200, max_keepalive_connections=50),
            headers={"User-Agent": USER_AGENT},
        )

    async def request(
        self,
        method: str,
        url: str,
        *,
        trusted: bool = False,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        data: Mapping[str, Any] | None = None,
        timeout_s: float | None = None,
        max_bytes: int | None = None,
        read_timeout_s: float | None = None,
    ) -> OutboundResponse:
        """Sends one request; follows redirects (each checked); reads the whole body.
        `read_timeout_s` lengthens the longest silence allowed, for providers that answer
        only when done (an image generated in one call)."""
        total = timeout_s or self.settings.total_timeout_s
        body: dict[str, Any] = {"json": json, "content": content, "data": data}
        if read_timeout_s is not None:
            body["timeout"] = httpx2.Timeout(
                read_timeout_s, connect=self.settings.connect_timeout_s
            )
        try:
            async with asyncio.timeout(total):
                return await self._follow(
                    method, _with_params(url, params), trusted, dict(headers or {}), body,
                    max_bytes or self.settings.max_response_bytes,
                )  # fmt: skip
        except TimeoutError:
            raise OutboundTimeout(f"{_host(url)} did not answer within {total:g} seconds") from None
        except httpx2.TimeoutException:
            raise OutboundTimeout(f"{_host(url)} timed out") from None
        except httpx2.InvalidURL as exc:
            raise OutboundRefused(f"the URL is not valid: {exc}") from None
        except httpx2.HTTPError as exc:
            raise OutboundError(f"could not reach {_host(url)}: {type(exc).__name__}") from None

    async def _follow(
        self,
        method: str,
        url: httpx2.URL,
        trusted: bool,
        headers: dict[str, str],
        body: dict[str, Any],
        max_bytes: int,
    ) -> OutboundResponse:
        origin = _origin(url)
        for _ in range(self.settings.max_redirects + 1):
            guarded = not trusted or _origin(url) != origin  # a trusted origin's own paths
            target = await self._target(url, headers) if guarded else _Target(url, headers, {})
            response = await self._send(method, target, body, max_bytes)
            location = response.headers.get("location")
            if response.status not in REDIRECTS or not location:
                return OutboundResponse(response.status, response.headers, response.content,
                                        str(url))  # fmt: skip
            next_url = httpx2.URL(urljoin(str(url), location))
            if _origin(next_url) != _origin(url):
                headers = {k: v for k, v in headers.items()
                           if k.lower() not in ("authorization", "cookie")}  # fmt: skip
            if response.status == 303 or (response.status in (301, 302) and method == "POST"):
                method, body = "GET", {}
            url = next_url
        raise OutboundRefused(
            f"{_host(str(url))} redirected more than {self.settings.max_redirects} times"
        )

    async def _target(self, url: httpx2.URL, headers: dict[str, str]) -> _Target:
        return await _pin(self.policy, url, headers)

    async def _send(
        self, method: str, target: _Target, body: dict[str, Any], max_bytes: int
    ) -> _Read:
        request = self._client.build_request(
            method, target.url, headers=target.headers, extensions=target.extensions,
            **{k: v for k, v in body.items() if v is not None},
        )  # fmt: skip
        response = await self._client.send(request, stream=True)
        try:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise _too_large(target, max_bytes)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(target, max_bytes)
                chunks.append(chunk)
        finally:
            await response.aclose()
        return _Read(response.status_code, response.headers, b"".join(chunks))

    async def check(self, url: str) -> None:
        """Raises OutboundRefused (or OutboundError) if a caller-given `url` may not be
        reached, before any byte is sent to it."""
        try:
            await _pin(self.policy, httpx2.URL(url), {})
        except httpx2.InvalidURL as exc:
            raise OutboundRefused(f"the URL is not valid: {exc}") from None

    def guarded_http_client(
        self,
        origin: str,
        *,
        headers: Mapping[str, str] | None = None,
        read_timeout_s: float | None = None,
        max_bytes: int | None = None,
    ) -> httpx2.AsyncClient:
        """A client of its own for a library that drives httpx2 itself (the MCP SDK): each
        request is guarded and pinned like ours, may go to `origin` only, and each response
        body is cut off past `max_bytes`. The caller closes it."""
        settings = self.settings
        cap = max_bytes or settings.max_response_bytes
        return httpx2.AsyncClient(
            transport=GuardedTransport(self.policy, origin, cap),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx2.Timeout(read_timeout_s or settings.read_timeout_s,
                                   connect=settings.connect_timeout_s),
            headers={"User-Agent": USER_AGENT, **(headers or {})},
        )  # fmt: skip

    async def close(self) -> None:
        await self._client.aclose()


class _Refused(OutboundRefused, httpx2.ConnectError):
    """A refusal raised inside an httpx2 transport: a connect error to the library that
    drives the client, a refusal to our code."""


class _TooLarge(OutboundTooLarge, httpx2.StreamError):
    """A body over the cap, raised while it streams. A StreamError, because the MCP SDK
    turns that into an error answer for the one request instead of ending the session."""


class GuardedTransport(httpx2.AsyncBaseTransport):
    """OutboundClient's guard as an httpx2 transport, so that every request a library
    sends (redirects and reconnections included) is checked and pinned again."""

    def __init__(self, policy: AddressPolicy, origin: str, max_bytes: int) -> None:
        self.policy = policy
        self.origin = _origin(httpx2.URL(origin))
        self.max_bytes = max_bytes
        self._inner = httpx2.AsyncHTTPTransport(http2=True, trust_env=False)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if _origin(request.url) != self.origin:  # a redirect, say: never off the server
            raise _Refused(f"refused to leave {self.origin[1]} for {request.url.host}")
        try:
            target = await _pin(self.policy, request.url, {})
        except OutboundRefused as exc:
            raise _Refused(str(exc)) from None
        except OutboundError as exc:
            raise httpx2.ConnectError(str(exc)) from None
        pinned = httpx2.Request(
            request.method, target.url, headers=request.headers, stream=request.stream,
            extensions={**request.extensions, **target.extensions},
        )  # fmt: skip
        response = await self._inner.handle_async_request(pinned)
        # Cut off while the body streams (not from Content-Length at the head), so the
        # library sees the error where it reads the body, for that request alone.
        response.stream = _Capped(response.stream, self.max_bytes, request.url.host)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Capped(httpx2.AsyncByteStream):
    def __init__(self, stream: Any, max_bytes: int, host: str) -> None:
        self._stream, self._max, self._host = stream, max_bytes, host

    async def __aiter__(self) -> AsyncIterator[bytes]:
        size = 0
        async for chunk in self._stream:
            size += len(chunk)
            if size > self._max:
                raise _TooLarge(f"the response of {self._host} is larger than {self._max} bytes")
            yield chunk

    async def aclose(self) -> None:
        await self._stream.aclose()


@dataclass(frozen=True, slots=True)
class _Read:
    status: int
    headers: httpx2.Headers
    content: bytes


async def _pin(policy: AddressPolicy, url: httpx2.URL, headers: dict[str, str]) -> _Target:
    """Checks a caller-given URL and pins it to the address that passed the check."""
    if url.scheme not in ("http", "https"):
        raise OutboundRefused(f"only http and https URLs are allowed, not '{url.scheme}'")
    if url.userinfo:
        raise OutboundRefused("URLs with credentials (user:password@) are not allowed")
    host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
    if not host:
        raise OutboundRefused("the URL has no host")
    addresses = await _resolve(host, port)
    for address in addresses:
        why = policy.refusal(address, port)
        if why is not None:
            shown = host if str(address) == host else f"{host} ({address})"
            raise OutboundRefused(f"refused to connect to {shown}: {why}")
    pinned = str(addresses[0])
    authority = host if url.port is None else f"{host}:{url.port}"
    extensions = {"sni_hostname": host} if url.scheme == "https" else {}
    return _Target(url.copy_with(host=pinned), {**headers, "Host": authority}, extensions)


async def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]"))]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundError(f"cannot resolve {host}: {exc}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise OutboundError(f"cannot resolve {host}")
    return addresses


def _with_params(url: str, params: Mapping[str, Any] | None) -> httpx2.URL:
    """The URL with `params` added to the query it already has."""
    parsed = httpx2.URL(url)
    return parsed.copy_merge_params(params) if params else parsed


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _host(url: str) -> str:
    try:
        return httpx2.URL(url).host or url
    except httpx2.InvalidURL:
        return "the server"


def _too_large(target: _Target, max_bytes: int) -> OutboundTooLarge:
    host = target.headers.get("Host") or target.url.host
    return OutboundTooLarge(f"the response of {host} is larger than {max_bytes} bytes")
