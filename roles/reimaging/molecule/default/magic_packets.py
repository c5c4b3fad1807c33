#!/usr/bin/python3
"""Read `tcpdump -r FILE -tt -nn -x` on stdin; print the magic packets it saw as JSON lines:
{"time", "src", "dst", "mac"} (mac: the MAC repeated 16 times after 6 x 0xFF; a UDP payload
that is not a magic packet gets "mac": null). Used by the molecule scenario's verify."""

import json
import re
import sys

HEADER = re.compile(r"^(\d+\.\d+) IP (\S+) > (\S+): UDP")


def packets(lines):
    current, data = None, bytearray()
    for line in lines:
        match = HEADER.match(line)
        if match:
            if current:
                yield current, bytes(data)
            current, data = match.groups(), bytearray()
        elif line.strip().startswith("0x") and current:
            data += bytes.fromhex("".join(line.split(":", 1)[1].split()))
    if current:
        yield current, bytes(data)


for (when, src, dst), data in packets(sys.stdin):
    payload = data[(data[0] & 0x0F) * 4 + 8:]
    magic = len(payload) == 102 and payload[:6] == b"\xff" * 6 and payload[6:] == payload[6:12] * 16
    mac = ":".join(f"{b:02x}" for b in payload[6:12]) if magic else None
    print(json.dumps({"time": float(when), "src": src, "dst": dst, "mac": mac}))
