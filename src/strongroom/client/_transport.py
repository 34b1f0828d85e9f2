"""Sending what `_spec` describes, over httpx: the sync and the async transport, and the
descriptors that turn each request builder of `resources` into a method of both clients."""

from __future__ import annotations

import asyncio
import functools
import inspect
import itertools
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

import httpx

from strongroom.client._spec import (
    RETRIES_MAX,
    RETRY_AFTER_MAX_S,
    TIMEOUT_S,
    Call,
    Config,
    Exchange,
    Paged,
    Retry,
    config,
)
from strongroom.client.errors import ApiConnectionError

P = ParamSpec("P")
M = TypeVar("M")
L = TypeVar("L")
T = TypeVar("T")
Built = TypeVar("Built")
R = TypeVar("R")


class SyncTransport:
    """The HTTP side of `Client`."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = TIMEOUT_S,
        max_retries: int = RETRIES_MAX,
        retry_after_max_s: float = RETRY_AFTER_MAX_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._config = config(
            base_url,
            api_key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            retry_after_max_s=retry_after_max_s,
        )
        self._http = httpx.Client(
            base_url=self._config.base_url,
            headers=self._config.headers,
            timeout=timeout_s,
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        return self._config.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _sleep(self, delay_s: float) -> None:
        time.sleep(delay_s)

    def _send(self, call: Call[M]) -> M:
        exchange = Exchange(call, self._config.retry)
        for attempt in itertools.count():
            try:
                response = self._http.request(**exchange.request)
            except httpx.TransportError as exc:
                retry = exchange.after_transport_error(attempt)
                if retry is None:
                    raise ApiConnectionError(str(self._http.base_url), exc) from exc
            else:
                answer = exchange.after_response(response, attempt)
                if not isinstance(answer, Retry):
                    return answer
                retry = answer
            self._sleep(retry.delay_s)
        raise AssertionError("unreachable")

    def _iterate(self, paged: Paged[L, T]) -> Iterator[T]:
        call: Call[L] | None = paged.first
        while call is not None:
            page = self._send(call)
            yield from paged.items(page)
            call = paged.next_call(call, page)


class AsyncTransport:
    """The HTTP side of `AsyncClient`."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout_s: float = TIMEOUT_S,
        max_retries: int = RETRIES_MAX,
        retry_after_max_s: float = RETRY_AFTER_MAX_S,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._config: Config = config(
            base_url,
            api_key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            retry_after_max_s=retry_after_max_s,
        )
        self._http = httpx.AsyncClient(
            base_url=self._config.base_url,
            headers=self._config.headers,
            timeout=timeout_s,
            transport=transport,
        )

    @property
    def base_url(self) -> str:
        return self._config.base_url

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def _sleep(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)

    async def _send(self, call: Call[M]) -> M:
        exchange = Exchange(call, self._config.retry)
        for attempt in itertools.count():
            try:
                response = await self._http.request(**exchange.request)
            except httpx.TransportError as exc:
                retry = exchange.after_transport_error(attempt)
                if retry is None:
                    raise ApiConnectionError(str(self._http.base_url), exc) from exc
            else:
                answer = exchange.after_response(response, attempt)
                if not isinstance(answer, Retry):
                    return answer
                retry = answer
            await self._sleep(retry.delay_s)
        raise AssertionError("unreachable")

    async def _iterate(self, paged: Paged[L, T]) -> AsyncIterator[T]:
        call: Call[L] | None = paged.first
        while call is not None:
            page = await self._send(call)
            for item in paged.items(page):
                yield item
            call = paged.next_call(call, page)


# -- request builders as methods -----------------------------------------------------------


class Method(Generic[P, Built, R]):
    """A builder of `resources` as a client method: called with the builder's arguments, it
    hands what the builder returns to `run` with the client."""

    def __init__(self, build: Callable[P, Built], run: Callable[[Any, Built], R]) -> None:
        self._build = build
        self._run = run
        self.__doc__ = build.__doc__
        self.__wrapped__ = build
        # help() shows the builder's parameters; what the method returns is the run's.
        self._signature = inspect.signature(build).replace(
            return_annotation=inspect.Signature.empty
        )
        client = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
        self._unbound_signature = self._signature.replace(
            parameters=[client, *self._signature.parameters.values()]
        )

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Callable[Concatenate[Any, P], R]: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> Callable[P, R]: ...
    def __get__(
        self, obj: object | None, owner: type[Any]
    ) -> Callable[Concatenate[Any, P], R] | Callable[P, R]:
        """On the class, a function of (client, ...), as a method looks there (help() lists
        it); on a client, the method."""
        build, run = self._build, self._run
        if obj is None:

            def function(client: Any, /, *args: P.args, **kwargs: P.kwargs) -> R:
                return run(client, build(*args, **kwargs))

            functools.update_wrapper(function, build)
            function.__signature__ = self._unbound_signature  # type: ignore[attr-defined]
            return function

        def method(*args: P.args, **kwargs: P.kwargs) -> R:
            return run(obj, build(*args, **kwargs))

        functools.update_wrapper(method, build)
        method.__signature__ = self._signature  # type: ignore[attr-defined]
        return method


def _send(client: SyncTransport, call: Call[M]) -> M:
    return client._send(call)


def _iterate(client: SyncTransport, paged: Paged[L, T]) -> Iterator[T]:
    return client._iterate(paged)


def _collect(client: SyncTransport, paged: Paged[L, T]) -> list[T]:
    return list(client._iterate(paged))


def _asend(client: AsyncTransport, call: Call[M]) -> Coroutine[Any, Any, M]:
    return client._send(call)


def _aiterate(client: AsyncTransport, paged: Paged[L, T]) -> AsyncIterator[T]:
    return client._iterate(paged)


async def _acollect(client: AsyncTransport, paged: Paged[L, T]) -> list[T]:
    return [item async for item in client._iterate(paged)]


def sync_call(build: Callable[P, Call[M]]) -> Method[P, Call[M], M]:
    return Method(build, _send)


def sync_iter(build: Callable[P, Paged[L, T]]) -> Method[P, Paged[L, T], Iterator[T]]:
    return Method(build, _iterate)


def sync_list(build: Callable[P, Paged[L, T]]) -> Method[P, Paged[L, T], list[T]]:
    return Method(build, _collect)


def async_call(
    build: Callable[P, Call[M]],
) -> Method[P, Call[M], Coroutine[Any, Any, M]]:
    return Method(build, _asend)


def async_iter(build: Callable[P, Paged[L, T]]) -> Method[P, Paged[L, T], AsyncIterator[T]]:
    return Method(build, _aiterate)


def async_list(
    build: Callable[P, Paged[L, T]],
) -> Method[P, Paged[L, T], Coroutine[Any, Any, list[T]]]:
    return Method(build, _acollect)
