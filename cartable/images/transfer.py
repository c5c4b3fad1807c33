"""HTTP transfers of the school fetcher: persistent HTTP/1.1 connections (keep-alive, directly
or through a plain-HTTP proxy), retries with backoff on a dropped connection, and a shared
token-bucket rate limit with a bounded burst. Standard library only (the role image_cache
installs this file with the fetcher).
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from cartable.errors import InputError, Problem

BLOCK = 16384              # bytes read (and charged to the rate limit) at a time
TIMEOUT = 120.0            # seconds without a byte before a connection counts as dropped
RETRIES = 6                # attempts after the first, per request
BACKOFF = (0.5, 30.0)      # first wait, longest wait (doubling), seconds
_DROPPED = (OSError, http.client.HTTPException)  # resets, timeouts, RemoteDisconnected, IncompleteRead


class TokenBucket:
    """At most `rate` bytes per second on average, and never more than `burst` bytes ahead of
    it (the bucket starts empty: no burst at the start either). Shared by every connection."""

    def __init__(self, rate: int, burst: int | None = None) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(BLOCK, rate // 4)  # 0.25 s of the rate
        self._tokens = 0.0
        self._last = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        """Account for n bytes, sleeping until the bucket allows them."""
        if self.rate <= 0:
            return
        with self._lock:  # one waiter at a time: the bytes are charged in arrival order
            now = time.monotonic()
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
            self._last = now
            self._tokens -= n
            wait = -self._tokens / self.rate if self._tokens < 0 else 0.0
            if wait > 0:
                time.sleep(wait)
                self._tokens = 0.0
                self._last = time.monotonic()


class NotFound(Exception):
    """The server answered 404 (not retried)."""


@dataclass
class Stats:
    """What crossed the link, for the report and the tests."""

    fetched: int = 0          # body bytes
    requests: int = 0
    connections: int = 0      # TCP connections opened
    retries: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class Client:
    """One persistent HTTP/1.1 connection to the store (one per fetching thread)."""

    def __init__(self, source: str, proxy: str | None, bucket: TokenBucket, stats: Stats,
                 keepalive: bool = True, rcvbuf: int = 0) -> None:
        self.base = urllib.parse.urlsplit(source.rstrip("/"))
        if self.base.scheme not in ("http", "https") or not self.base.hostname:
            raise InputError(Problem(source, "not an http(s) URL", field="--source",
                                     hint="e.g. http://images.dsi.example/images"))
        self.proxy = urllib.parse.urlsplit(proxy) if proxy else None
        if self.proxy and (self.proxy.scheme != "http" or not self.proxy.hostname):
            raise InputError(Problem(proxy or "", "the proxy must be an http:// URL",
                                     field="--proxy", hint="e.g. http://proxy.ac-example.fr:3128"))
        self.bucket, self.stats, self.keepalive, self.rcvbuf = bucket, stats, keepalive, rcvbuf
        self._conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.proxy:  # the proxy's host; https goes through a CONNECT tunnel
            host, port = self.proxy.hostname or "", self.proxy.port or 3128
        else:
            host, port = self.base.hostname or "", self.base.port
        cls = http.client.HTTPSConnection if self.base.scheme == "https" else http.client.HTTPConnection
        conn = cls(host, port, timeout=TIMEOUT)
        if self.proxy and self.base.scheme == "https":
            conn.set_tunnel(self.base.hostname or "", self.base.port)
        conn.connect()
        if self.rcvbuf and conn.sock is not None:  # a rate-limited reader: a bounded window
            conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        self.stats.add(connections=1)
        return conn

    def _target(self, path: str) -> str:
        full = f"{self.base.path}/{path}"
        if self.proxy and self.base.scheme == "http":  # absolute URI: the proxy keeps it alive
            return f"http://{self.base.netloc}{full}"
        return full

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _once(self, path: str) -> bytes:
        if self._conn is None:
            self._conn = self._connect()
        headers = {"Host": self.base.netloc, "Accept-Encoding": "identity",
                   "Connection": "keep-alive" if self.keepalive else "close"}
        self._conn.request("GET", self._target(path), headers=headers)
        response = self._conn.getresponse()
        self.stats.add(requests=1)
        if response.status != 200:
            response.read()
            if response.will_close or not self.keepalive:
                self.close()
            if response.status == 404:
                raise NotFound(path)
            raise http.client.HTTPException(f"HTTP {response.status} {response.reason}")
        parts = []
        while block := response.read(BLOCK):
            self.bucket.take(len(block))
            parts.append(block)
        if response.length not in (None, 0):  # fewer bytes than Content-Length
            raise http.client.IncompleteRead(b"".join(parts), response.length)
        if response.will_close or not self.keepalive:
            self.close()
        data = b"".join(parts)
        self.stats.add(fetched=len(data))
        return data

    def get(self, path: str) -> bytes:
        """The body of `path` under the source; retried with backoff when the connection drops
        or the server answers an error; InputError when it still fails (or 404)."""
        url = f"{self.base.geturl()}/{path}"
        wait = BACKOFF[0]
        for attempt in range(RETRIES + 1):
            try:
                return self._once(path)
            except NotFound:
                raise InputError(Problem(url, "not found (HTTP 404)", hint="the DSI store is being "
                                         "published or pruned: the next run resumes")) from None
            except _DROPPED as exc:
                self.close()
                if attempt == RETRIES:
                    raise InputError(Problem(url, f"cannot download after {RETRIES + 1} attempts: "
                                             f"{exc!r}", hint="the next run resumes where this "
                                             "one stopped")) from None
                self.stats.add(retries=1)
                time.sleep(wait)
                wait = min(wait * 2, BACKOFF[1])
        raise AssertionError("unreachable")
