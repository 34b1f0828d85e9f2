"""uvicorn's httptools protocol with the request head capped (see http/server.py)."""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from strongroom.core.limits import REQUEST_HEAD_BYTES_MAX
from strongroom.http.server import head_too_large_response


class CappedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the request head capped: only the head's
    allowance of each read is parsed while the head is open, and a head still open past
    it is answered with a 431 (the connection then closed)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # the bytes that come next belong to a request's head
        self._head_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._in_head = True  # the next request's head
        self._head_bytes = 0

    def head_open(self) -> bool:
        return self._in_head

    def data_received(self, data: bytes) -> None:
        if not self._in_head:
            super().data_received(data)
            return
        room = REQUEST_HEAD_BYTES_MAX - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            super().data_received(data)
            return
        self._head_bytes = REQUEST_HEAD_BYTES_MAX
        super().data_received(data[:room])
        if self.transport.is_closing():
            return  # the parser refused the request already (a 400)
        if self.head_open():
            dates = [(n, v) for n, v in self.server_state.default_headers if n == b"date"]
            self.transport.write(head_too_large_response(dates))
            self.transport.close()
            return
        super().data_received(data[room:])  # the head ended within its allowance
