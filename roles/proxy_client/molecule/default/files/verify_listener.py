#!/usr/bin/python3
"""A tiny HTTP listener for proxy_client's molecule verify (stdlib only).

Stands for the school proxy (or for a LAN web server): every request line it
receives is appended to a log file, GET answers 200 with a body naming the
listener and the request line, CONNECT is refused (403), so a client's
request shows whether it came in proxy form (`GET http://host/path`,
`CONNECT host:443`) or direct (`GET /path`).

Usage: verify_listener.py NAME ADDRESS PORT LOGFILE
"""

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_handler(name: str, log_path: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _record(self) -> None:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"{self.requestline} Host={self.headers.get('Host', '')}\n")

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._record()
            body = f"cartable-verify {name}: {self.requestline}\n".encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_CONNECT(self) -> None:  # noqa: N802
            self._record()
            self.send_error(403, "cartable-verify: no tunnel")

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


def main() -> None:
    name, address, port, log_path = sys.argv[1:5]
    ThreadingHTTPServer((address, int(port)), make_handler(name, log_path)).serve_forever()


if __name__ == "__main__":
    main()
