"""The HTTP boundary every lake server shares: who is asking, how much they may send, where to listen.

- :class:`Guard` is an ASGI middleware: it refuses a body over ``max_body_bytes`` (413, from
  ``Content-Length`` before reading, or while reading a chunked body) and a request without a
  valid bearer token where one is required (401 with ``WWW-Authenticate: Bearer``); it puts the
  :class:`~catalog.tokens.Principal` in ``scope["lake.principal"]``.
- :func:`decode_json` parses a body with its nesting bounded (400 for broken or too-deep JSON).
- :func:`check_binding` refuses to listen beyond loopback while requests need no token.

Errors are JSON ``{"detail": "..."}``, the shape FastAPI and the feature server both use.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Awaitable, Callable, Collection, MutableMapping
from dataclasses import dataclass
from typing import Any

from catalog.errors import (
    AuthenticationError,
    CatalogConnectionError,
    RequestError,
    UnsafeBindError,
)
from catalog.tokens import Authenticator, Principal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[..., Awaitable[None]]

PRINCIPAL_KEY = "lake.principal"
"""Where :class:`Guard` puts the request's principal in the ASGI scope."""


@dataclass(frozen=True)
class Limits:
    """What one request may carry."""

    max_body_bytes: int = 8 * 1024 * 1024
    """Largest request body (413 beyond)."""
    max_json_depth: int = 64
    """Deepest nesting of objects and lists in a JSON body (400 beyond)."""


def json_depth(value: Any, limit: int) -> int:
    """How deeply ``value`` nests (iteratively; stops counting past ``limit``)."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def reject_constant(name: str) -> Any:
    """``NaN`` and ``Infinity`` are not JSON (Python's parser takes them): refused."""
    raise ValueError(f"{name} is not a JSON value")


def decode_json(body: bytes, limits: Limits) -> Any:
    """A request body as JSON, or :class:`RequestError` (400: not JSON or nested too deeply; 413: too large)."""
    if len(body) > limits.max_body_bytes:
        raise RequestError(413, f"the request body is {len(body)} bytes; at most {limits.max_body_bytes} are taken")
    try:
        value = json.loads(body, parse_constant=reject_constant)
    except RecursionError:
        raise RequestError(400, f"the JSON body nests more than {limits.max_json_depth} levels deep") from None
    except ValueError as exc:  # JSONDecodeError, and bytes that are not UTF-8
        raise RequestError(400, f"the request body is not valid JSON: {exc}") from None
    if json_depth(value, limits.max_json_depth) > limits.max_json_depth:
        raise RequestError(400, f"the JSON body nests more than {limits.max_json_depth} levels deep")
    return value


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body, or :class:`RequestError` 413 past ``limit`` bytes (400 if the client left)."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise RequestError(400, "the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the request body exceeds {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.0/8``, ``::1``, ``localhost``)."""
    if host.strip().lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(host: str, port: int, authenticator: Authenticator, what: str) -> None:
    """Allow listening on ``host`` only if that is loopback or requests need a token.

    A server bound beyond loopback then always requires a token (revoking every token later
    does not open it to anyone).

    Raises:
        UnsafeBindError: ``host`` is not loopback and no active token exists (mode ``auto``).
    """
    if is_loopback(host):
        return
    if not authenticator.required():
        raise UnsafeBindError(
            f"refusing to serve {what} on {host}:{port} without authentication: no API token exists, so "
            "anyone who can reach that address could use it. Create a token first (`lake token create "
            "--principal NAME`; clients send `Authorization: Bearer <token>`), or listen on 127.0.0.1.",
            host=host)
    authenticator.require()


async def respond(send: Send, status: int, body: Any, headers: Collection[tuple[bytes, bytes]] = ()) -> None:
    """Send a whole JSON response."""
    data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(data)),
                            *headers]})
    await send({"type": "http.response.body", "body": data})


class Guard:
    """ASGI middleware: authentication and the body size limit in front of ``app``.

    Args:
        app: the ASGI application behind it.
        authenticator: decides who a request is from.
        limits: the body size limit (JSON depth is for the application, see :func:`decode_json`).
        public: paths served without a token (``/health``, for load balancers); the application
            finds an anonymous principal in the scope there.
    """

    def __init__(self, app: ASGIApp, authenticator: Authenticator, limits: Limits,
                 public: Collection[str] = ("/health",)) -> None:
        self.app = app
        self.authenticator = authenticator
        self.limits = limits
        self.public = frozenset(public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        authorization = length = None
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-length":
                length = value
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await respond(send, 400, {"detail": "the Content-Length header is not a number"})
            if declared > self.limits.max_body_bytes:
                return await respond(send, 413, {"detail": f"the request body is {declared} bytes; at most "
                                                           f"{self.limits.max_body_bytes} are taken"})
        principal = self.authenticator.cached(authorization)
        if principal is None:
            try:
                # A database call (a token not seen lately, or whether any exists): off the event loop.
                principal = await asyncio.get_running_loop().run_in_executor(
                    None, self.authenticator.authenticate, authorization)
            except AuthenticationError as exc:
                if scope["path"] not in self.public:
                    return await respond(send, 401, {"detail": exc.message},
                                         [(b"www-authenticate", b'Bearer realm="lake"')])
                principal = Principal("anonymous")
            except RequestError as exc:
                return await respond(send, exc.status, {"detail": exc.message})
            except CatalogConnectionError as exc:  # the tokens cannot be checked: the backend is down
                return await respond(send, 503, {"detail": exc.message})
        scope[PRINCIPAL_KEY] = principal
        if length is not None:  # declared and within the limit: the server reads no more than declared
            return await self.app(scope, receive, send)
        await _Chunked(self.limits.max_body_bytes, receive, send).run(self.app, scope)


class _Chunked:
    """A body without ``Content-Length``, stopped at the limit: 413, and the app is told the client left."""

    def __init__(self, limit: int, receive: Receive, send: Send) -> None:
        self.limit, self.seen, self.answered = limit, 0, False
        self._receive, self._send = receive, send

    async def run(self, app: ASGIApp, scope: Scope) -> None:
        await app(scope, self.receive, self.send)

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] == "http.request":
            self.seen += len(message.get("body", b""))
            if self.seen > self.limit:
                if not self.answered:
                    self.answered = True
                    await respond(self._send, 413, {"detail": f"the request body exceeds {self.limit} bytes"})
                return {"type": "http.disconnect"}
        return message

    async def send(self, message: Message) -> None:
        if not self.answered:  # once the guard answered (413), the app's answer goes nowhere
            await self._send(message)
