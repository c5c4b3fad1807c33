#!/usr/bin/env python3
"""Send one IPP Print-Job (RFC 8011) to a printer URI and print the job id.

    ipp_print.py ipp://HOST:631/ipp/print "text to print" [job-name]

A real client over the network, with the standard library only (the lab's hosts have
python3 but no CUPS client). Exits non-zero unless the printer answers successful-ok.
"""

import http.client
import struct
import sys
from urllib.parse import urlsplit


def attribute(tag: int, name: str, value: bytes) -> bytes:
    return struct.pack(">BH", tag, len(name)) + name.encode() + struct.pack(">H", len(value)) + value


def print_job(uri: str, text: str, job_name: str) -> int:
    request = struct.pack(">BBHI", 2, 0, 0x0002, 1)  # IPP/2.0, Print-Job, request-id 1
    request += b"\x01"  # operation-attributes-tag
    request += attribute(0x47, "attributes-charset", b"utf-8")
    request += attribute(0x48, "attributes-natural-language", b"en")
    request += attribute(0x45, "printer-uri", uri.encode())
    request += attribute(0x42, "requesting-user-name", b"cartable-lab")
    request += attribute(0x42, "job-name", job_name.encode())
    request += attribute(0x49, "document-format", b"text/plain")
    request += b"\x03" + text.encode()  # end-of-attributes-tag, then the document
    parts = urlsplit(uri)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 631, timeout=15)
    conn.request("POST", parts.path or "/", body=request, headers={"Content-Type": "application/ipp"})
    answer = conn.getresponse()
    body = answer.read()
    if answer.status != 200 or len(body) < 8:
        raise SystemExit(f"HTTP {answer.status} from {uri}")
    status = struct.unpack(">H", body[2:4])[0]
    if status >= 0x0100:
        raise SystemExit(f"IPP status 0x{status:04x} from {uri}")
    marker = b"\x21\x00\x06job-id\x00\x04"
    at = body.find(marker)
    if at < 0:
        raise SystemExit(f"no job-id in the answer of {uri}")
    return struct.unpack(">i", body[at + len(marker):at + len(marker) + 4])[0]


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    print(print_job(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "cartable-lab"))
