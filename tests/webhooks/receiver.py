"""A webhook receiver for the tests and the bench: a real HTTP/1.1 server in its own process (asyncio streams,
so it can misbehave below HTTP: hang, close the connection mid-request).

    python receiver.py [--port N]      # prints "listening <port>" when bound

Each path follows a script of actions, consumed one per request, then its default:
``200`` / ``500`` / any status, ``hang`` (read the request, never answer), ``close`` (read it, close the
connection without a byte), ``slow:<seconds>`` (wait, then 200). Control routes (JSON):
``POST /_script {"path": "/a", "actions": [...], "default": "200"}``, ``GET /_log?path=/a`` (every request
received: path, headers, body, action, arrival time), ``POST /_reset``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import defaultdict, deque
from urllib.parse import parse_qs, urlsplit

scripts: dict[str, deque[str]] = defaultdict(deque)
defaults: dict[str, str] = {}
received: list[dict] = []


async def respond(writer: asyncio.StreamWriter, status: int, body: bytes = b"", keep: bool = True) -> None:
    head = f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\nContent-Type: application/json\r\n"
    head += "\r\n" if keep else "Connection: close\r\n\r\n"
    writer.write(head.encode() + body)
    await writer.drain()


def control(method: str, path: str, query: dict, body: bytes) -> tuple[int, bytes]:
    if path == "/_script" and method == "POST":
        spec = json.loads(body)
        scripts[spec["path"]] = deque(spec.get("actions", []))
        if "default" in spec:
            defaults[spec["path"]] = spec["default"]
        return 200, b"{}"
    if path == "/_log":
        want = query.get("path", [None])[0]
        return 200, json.dumps([r for r in received if want is None or r["path"] == want]).encode()
    if path == "/_reset":
        scripts.clear()
        defaults.clear()
        received.clear()
        return 200, b"{}"
    return 404, b"{}"


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = {}
            for line in lines[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    headers[k.strip().lower()] = v.strip()
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            url = urlsplit(target)
            if url.path.startswith("/_"):
                status, out = control(method, url.path, parse_qs(url.query), body)
                await respond(writer, status, out)
                continue
            action = scripts[url.path].popleft() if scripts[url.path] else defaults.get(url.path, "200")
            received.append({"path": url.path, "headers": headers, "body": body.decode(), "action": action,
                             "at": time.time()})
            if action == "hang":
                await asyncio.sleep(3600)
                return
            if action == "close":
                return
            if action.startswith("slow:"):
                await asyncio.sleep(float(action[5:]))
                action = "200"
            await respond(writer, int(action), b'{"ok":true}')
    except asyncio.CancelledError:
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=0)
    try:
        asyncio.run(main(p.parse_args().port))
    except KeyboardInterrupt:
        sys.exit(0)
