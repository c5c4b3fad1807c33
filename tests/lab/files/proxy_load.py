#!/usr/bin/python3
"""Load generator of the lab's list-swap proof: proxy-form HTTP requests through the school
proxy, from a workstation, for DURATION seconds, over listed and unlisted names, in THREADS
threads; prints a JSON summary: requests, listed requests allowed (status 200 for a listed
name), 5xx, and errors (no HTTP answer). Standard library only (the workstation's python3).

    proxy_load.py PROXY_HOST PROXY_PORT DURATION THREADS --listed a,b --unlisted c,d
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import threading
import time


def worker(args: argparse.Namespace, names: list[tuple[str, bool]], stop: float, out: dict, lock: threading.Lock) -> None:
    counts = {"requests": 0, "listed_allowed": 0, "listed_refused": 0, "unlisted_ok": 0, "5xx": 0, "errors": 0}
    for name, listed in itertools.cycle(names):
        if time.monotonic() > stop:
            break
        try:
            conn = http.client.HTTPConnection(args.proxy_host, args.proxy_port, timeout=10)
            conn.request("GET", f"http://{name}/", headers={"Host": name, "Connection": "close"})
            status = conn.getresponse().status
            conn.close()
        except OSError:
            counts["errors"] += 1
            continue
        counts["requests"] += 1
        if status >= 500:
            counts["5xx"] += 1
        if listed:
            counts["listed_allowed" if status == 200 else "listed_refused"] += 1
        elif status == 200:
            counts["unlisted_ok"] += 1
    with lock:
        for key, value in counts.items():
            out[key] = out.get(key, 0) + value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("proxy_host")
    parser.add_argument("proxy_port", type=int)
    parser.add_argument("duration", type=float)
    parser.add_argument("threads", type=int)
    parser.add_argument("--listed", required=True)
    parser.add_argument("--unlisted", required=True)
    args = parser.parse_args()
    names = [(n, True) for n in args.listed.split(",")] + [(n, False) for n in args.unlisted.split(",")]
    stop = time.monotonic() + args.duration
    out: dict = {}
    lock = threading.Lock()
    threads = [threading.Thread(target=worker, args=(args, names[i % len(names):] + names[:i % len(names)], stop, out, lock))
               for i in range(args.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(out, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
