"""A userspace TCP relay that adds a WAN's round trip (this machine's kernel has no netem).

    python tests/bench/latency_relay.py --upstream HOST:PORT LISTEN_IP:PORT:RTT_MS [...]

Each listener forwards its connections to the upstream and emulates, per connection:
- the round trip: every data block is delivered RTT/2 after the relay read it, each way;
- the TCP handshake: the upstream connection (and so the first request) starts one RTT after
  the client's connect;
- slow start on the downstream (server -> client): at most an initial window of 10 segments
  (14,480 B) per round trip, doubled each round trip that used it, capped at a receive window
  (--window, 256 KiB: the fetcher's bounded socket buffer), back to the initial window after an
  idle second (Linux's slow start after idle).
It does not model: losses and their retransmissions, the congestion control's reaction to the
queue, the upstream's (school -> DSI) window, per-packet jitter. The bandwidth is the link's
(tc tbf on the veths, outside the relay). Runs until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

SEGMENT = 1448
INITIAL_WINDOW = 10 * SEGMENT
IDLE_RESET = 1.0      # seconds
BLOCK = 65536


class Downstream:
    """Slow start's pacing of the server -> client stream: bytes allowed per round trip."""

    def __init__(self, rtt: float, window: int) -> None:
        self.rtt, self.window = rtt, window
        self.cwnd = INITIAL_WINDOW
        self.round_start = -1e9
        self.sent = 0
        self.last = -1e9

    async def send(self, loop: asyncio.AbstractEventLoop, writer: asyncio.StreamWriter,
                   data: bytes) -> None:
        while data:
            now = loop.time()
            if now - self.last > IDLE_RESET + self.rtt:
                self.cwnd, self.round_start, self.sent = INITIAL_WINDOW, now, 0
            elif now >= self.round_start + self.rtt:  # the round's acknowledgements are back
                if self.sent >= self.cwnd:
                    self.cwnd = min(self.cwnd * 2, self.window)
                self.round_start, self.sent = now, 0
            room = self.cwnd - self.sent
            if room <= 0:
                await asyncio.sleep(self.round_start + self.rtt - now)
                continue
            part, data = data[:room], data[room:]
            writer.write(part)
            await writer.drain()
            self.sent += len(part)
            self.last = loop.time()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float,
                pacing: Downstream | None) -> None:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(maxsize=64)

    async def read() -> None:
        while True:
            data = await reader.read(BLOCK)
            await queue.put((loop.time() + delay, data))
            if not data:
                return

    reading = asyncio.create_task(read())
    try:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - loop.time()))
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            if pacing:
                await pacing.send(loop, writer, data)
            else:
                writer.write(data)
                await writer.drain()
    finally:
        reading.cancel()


async def _serve(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter,
                 upstream: tuple[str, int], rtt: float, window: int) -> None:
    try:
        await asyncio.sleep(rtt)  # SYN, SYN-ACK: the first request leaves one round trip later
        server_r, server_w = await asyncio.open_connection(*upstream)
    except OSError:
        client_w.close()
        return
    try:
        await asyncio.gather(_pump(client_r, server_w, rtt / 2, None),
                             _pump(server_r, client_w, rtt / 2, Downstream(rtt, window)))
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        for w in (client_w, server_w):
            with contextlib.suppress(OSError):
                w.close()


async def main_async(upstream: tuple[str, int], listens: list[tuple[str, int, float]],
                     window: int) -> None:
    servers = []
    for host, port, rtt in listens:
        servers.append(await asyncio.start_server(
            lambda r, w, rtt=rtt: _serve(r, w, upstream, rtt, window), host, port))
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="HOST:PORT of the server")
    parser.add_argument("--window", type=int, default=262144, help="cap of the emulated cwnd")
    parser.add_argument("listen", nargs="+", help="LISTEN_IP:PORT:RTT_MS")
    args = parser.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    listens = [(ip, int(p), float(ms) / 1000) for ip, p, ms in (x.split(":") for x in args.listen)]
    asyncio.run(main_async((host, int(port)), listens, args.window))


if __name__ == "__main__":
    main()
