"""The bare-framework ceiling for ``bench/api.sh``: litestar + msgspec decoding the same request body as
``POST /v1/screen`` (the engine's ``Message``) and answering a small JSON object, with nothing else: no key
check, rate limit, cache, engine, SQL or audit. Served by uvicorn with ``smsguard serve``'s settings.

Run: ``.venv/bin/python bench/bare_app.py PORT [WORKERS]``.
"""

from __future__ import annotations

import sys

import msgspec
import uvicorn
from litestar import Litestar, MediaType, Response, post

from smsguard.engine import Message

_encode = msgspec.json.Encoder().encode


@post("/v1/screen", status_code=200)
async def screen(data: Message) -> Response[bytes]:
    return Response(content=_encode({"id": data.id, "decision": "pass", "length": len(data.text)}),
                    media_type=MediaType.JSON)


def create_app() -> Litestar:
    return Litestar([screen], openapi_config=None)


if __name__ == "__main__":
    port = int(sys.argv[1])
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    options = {"host": "127.0.0.1", "port": port, "log_level": "warning", "access_log": False, "loop": "uvloop",
               "http": "httptools"}  # smsguard serve's settings (smsguard/commands/serve.py)
    if workers == 1:
        uvicorn.run(create_app(), **options)
    else:
        sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
        uvicorn.run("bare_app:create_app", factory=True, workers=workers, **options)
