"""A small pycurl client for the simulators: one request at a time, or many multiplexed on one connection.

Herald's delivery transport is libcurl's multiplexed HTTP/2, so the simulators are tested with
the same client rather than with a pure-Python one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import pycurl

HTTP_VERSIONS = {pycurl.CURL_HTTP_VERSION_1_1: "1.1", pycurl.CURL_HTTP_VERSION_2_0: "2"}


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    http_version: str

    def json(self) -> Any:
        return json.loads(self.body)


class Http2Client:
    """Sequential requests on one reused connection (HTTP/2 over TLS via ALPN, unless ``http1``)."""

    def __init__(self, ca_path: Path, *, http1: bool = False) -> None:
        self.curl = pycurl.Curl()
        self.curl.setopt(pycurl.CAINFO, str(ca_path))
        version = pycurl.CURL_HTTP_VERSION_1_1 if http1 else pycurl.CURL_HTTP_VERSION_2TLS
        self.curl.setopt(pycurl.HTTP_VERSION, version)
        self.curl.setopt(pycurl.TIMEOUT, 30)

    def post(
        self, url: str, body: bytes | Mapping[str, Any], headers: Mapping[str, str] | None = None
    ) -> Response:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        out, head = BytesIO(), _HeaderCollector()
        _prepare(self.curl, url, data, headers or {}, out, head)
        self.curl.perform()
        return _response(self.curl, out, head)

    def close(self) -> None:
        self.curl.close()

    def __enter__(self) -> Http2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def post_many(
    url: str,
    bodies: Iterable[bytes],
    headers: Mapping[str, str],
    ca_path: Path,
    *,
    in_flight: int = 100,
) -> tuple[list[Response], int]:
    """POST every body with ``in_flight`` streams multiplexed on one HTTP/2 connection.

    Returns the responses (in completion order) and the number of connections libcurl opened.
    """
    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)
    multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, 1)
    multi.setopt(pycurl.M_MAX_CONCURRENT_STREAMS, in_flight)
    pending = iter(bodies)
    free = [_multi_handle(ca_path) for _ in range(in_flight)]
    responses: list[Response] = []
    connects = 0
    active = 0

    def feed() -> None:
        nonlocal active
        while free:
            data = next(pending, None)
            if data is None:
                return
            curl = free.pop()
            curl.out, curl.head = BytesIO(), _HeaderCollector()
            _prepare(curl, url, data, headers, curl.out, curl.head)
            multi.add_handle(curl)
            active += 1

    feed()
    while active:
        while multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        while True:
            queued, done, failed = multi.info_read()
            for curl in done:
                connects += curl.getinfo(pycurl.NUM_CONNECTS)
                responses.append(_response(curl, curl.out, curl.head))
            for _curl, _errno, message in failed:
                raise RuntimeError(f"curl failed: {message}")
            for curl in done:
                multi.remove_handle(curl)
                free.append(curl)
                active -= 1
            if not queued:
                break
        feed()
        if active:
            multi.select(1.0)
    for curl in free:
        curl.close()
    multi.close()
    return responses, connects


class _HeaderCollector:
    def __init__(self) -> None:
        self.headers: dict[str, str] = {}

    def __call__(self, line: bytes) -> None:
        name, sep, value = line.decode("latin-1").partition(":")
        if sep:
            self.headers[name.strip().lower()] = value.strip()


def _multi_handle(ca_path: Path) -> pycurl.Curl:
    curl = pycurl.Curl()
    curl.setopt(pycurl.CAINFO, str(ca_path))
    curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_2TLS)
    # Wait for the first connection's ALPN answer instead of opening one per handle.
    curl.setopt(pycurl.PIPEWAIT, 1)
    curl.setopt(pycurl.TIMEOUT, 60)
    return curl


def _prepare(
    curl: pycurl.Curl, url: str, data: bytes, headers: Mapping[str, str], out: BytesIO, head: _HeaderCollector
) -> None:
    curl.setopt(pycurl.URL, url)
    curl.setopt(pycurl.POST, 1)
    curl.setopt(pycurl.POSTFIELDS, data)
    curl.setopt(
        pycurl.HTTPHEADER,
        [f"{name}: {value}" for name, value in {"content-type": "application/json", **headers}.items()],
    )
    curl.setopt(pycurl.WRITEDATA, out)
    curl.setopt(pycurl.HEADERFUNCTION, head)


def _response(curl: pycurl.Curl, out: BytesIO, head: _HeaderCollector) -> Response:
    version = curl.getinfo(pycurl.INFO_HTTP_VERSION)
    return Response(
        curl.getinfo(pycurl.RESPONSE_CODE),
        head.headers,
        out.getvalue(),
        HTTP_VERSIONS.get(version, str(version)),
    )
