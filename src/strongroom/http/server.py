"""How uvicorn serves the app: no `server` banner, and a request head capped while it is read.

uvicorn's httptools protocol (the fast one, which `uvicorn[standard]` brings) reads a request's
head without a bound: a 16 MB header was held in memory and handed to the app. Here the head
(request line and headers) is capped at REQUEST_HEAD_BYTES_MAX as it arrives; past it the
client gets a 431 problem and the connection is closed, before the app runs. Without httptools,
h11 caps it (`h11_max_incomplete_event_size`, a plain 400). The app checks the size of the head
it is given too (http/middleware.BodyLimit), whatever server runs it.
"""

from __future__ import annotations

import json
from typing import Any, Final

from strongroom.core.limits import REQUEST_HEAD_BYTES_MAX
from strongroom.http.errors import HTTP_ERRORS, PROBLEM_JSON
from strongroom.http.middleware import SECURITY_HEADERS

_TOO_LARGE: Final = next(e for e in HTTP_ERRORS if e.code == "request_headers_too_large")


def uvicorn_options() -> dict[str, Any]:
    """Keyword arguments of uvicorn.Config / uvicorn.run for serving the app."""
    options: dict[str, Any] = {
        "server_header": False,  # no banner naming the server (its `date` header stays)
        "h11_max_incomplete_event_size": REQUEST_HEAD_BYTES_MAX,  # the h11 protocol's cap
    }
    try:
        # A class at module level: `serve --workers` pickles the config for each worker.
        from strongroom.http.capped_httptools import CappedHttpToolsProtocol
    except ImportError:  # no httptools: h11, capped by the option above
        options["http"] = "h11"
    else:
        options["http"] = CappedHttpToolsProtocol
    return options


def head_too_large_response(date_headers: list[tuple[bytes, bytes]]) -> bytes:
    """The raw HTTP/1.1 431 answer (a problem, as the app's errors are) to a head over the cap;
    the app never saw the request, so it has no request id."""
    body = json.dumps(
        {
            "type": f"urn:strongroom:error:{_TOO_LARGE.code}",
            "title": _TOO_LARGE.title,
            "status": _TOO_LARGE.status,
            "detail": f"the request line and headers are over {REQUEST_HEAD_BYTES_MAX} bytes",
            "code": _TOO_LARGE.code,
            "request_id": None,
        }
    ).encode()
    headers = [
        *date_headers,
        (b"content-type", PROBLEM_JSON.encode()),
        (b"content-length", str(len(body)).encode()),
        *SECURITY_HEADERS,
        (b"connection", b"close"),
    ]
    head = b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
    head += b"".join(name + b": " + value + b"\r\n" for name, value in headers)
    return head + b"\r\n" + body
