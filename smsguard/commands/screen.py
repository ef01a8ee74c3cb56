"""``smsguard screen [FILE]``: one JSON verdict per input line, in input order.

A line starting with ``{`` is a JSON object (``text`` required; ``id``, ``kind``, ``signature``,
``tenant`` optional); any other line is the text itself. Lines are screened in batches so the
classifier runs batched. A malformed line stops the run with exit code 2 and an error naming its
line number; every verdict before it has been written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from typing import BinaryIO

import msgspec

from smsguard.core import InputError
from smsguard.engine import Engine, Message, default_config

BATCH = 512
_decode_message = msgspec.json.Decoder(Message).decode
_encode = msgspec.json.Encoder().encode


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("screen", help="screen messages from FILE or stdin, one JSON verdict per line")
    p.add_argument("file", nargs="?", help="input file (default: stdin)")
    p.add_argument(
        "--content-only",
        action="store_true",
        help="skip the form rules (signature, opt-out instruction, kind templates) and screen content alone",
    )
    p.set_defaults(handler=run)


def parse_line(line: str, lineno: int) -> Message:
    """One input line as a Message; InputError names the line (and the JSON path) when malformed."""
    if line.startswith("{"):
        try:
            message = _decode_message(line)
        except msgspec.ValidationError as e:
            msg, _, path = str(e).partition(" - at `")
            raise InputError(msg, where=f"line {lineno}: {path.rstrip('`') or '$'}", code="input.schema") from None
        except msgspec.DecodeError as e:
            raise InputError(f"invalid JSON: {e}", where=f"line {lineno}", code="input.json") from None
    else:
        message = Message(text=line)
    if not message.text.strip():
        raise InputError("text must not be empty", where=f"line {lineno}: $.text", code="input.empty_text")
    return message


def read_lines(stream: BinaryIO) -> Iterator[tuple[int, str]]:
    for lineno, raw in enumerate(stream, 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"not UTF-8 (byte {e.start})", where=f"line {lineno}", code="input.encoding") from None
        if lineno == 1:
            line = line.removeprefix("\ufeff")
        yield lineno, line.rstrip("\r\n")


def run(args: argparse.Namespace) -> int:
    engine = Engine(default_config())
    out = sys.stdout.buffer
    stream: BinaryIO = open(args.file, "rb") if args.file else sys.stdin.buffer  # noqa: SIM115
    try:
        batch: list[Message] = []
        try:
            for lineno, line in read_lines(stream):
                batch.append(parse_line(line, lineno))
                if len(batch) >= BATCH:
                    _flush(engine, batch, out, args.content_only)
        finally:
            _flush(engine, batch, out, args.content_only)  # what came before a bad line is still answered
    finally:
        if args.file:
            stream.close()
    return 0


def _flush(engine: Engine, batch: list[Message], out: BinaryIO, content_only: bool) -> None:
    if batch:
        for verdict in engine.screen_many(batch, content_only=content_only):
            out.write(_encode(verdict) + b"\n")
        out.flush()
        batch.clear()
