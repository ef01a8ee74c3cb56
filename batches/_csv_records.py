"""CSV records of an uploaded file, bounded: whatever the bytes, the importer gets rows or per-line rejects.

Python's ``csv`` module alone raised ``_csv.Error`` (a 500) on files people really upload: CR-only line ends
(old Mac Excel), a field over its 131,072-character limit, a quote never closed (it swallows the rest of
the file), a 5 MB line. Here:

* lines end at CR LF, LF or a lone CR (``bytes.splitlines``), read in 64 KiB chunks, so memory is flat;
* a line over ``MAX_RECORD`` bytes is skipped without being held in memory, rejected as ``contacts.too_long``;
* a record is parsed with ``strict=True``; a quoted field may span lines, but a record over ``MAX_RECORD``
  characters or a quote still open at the end of the file rejects the line that opened it
  (``contacts.csv``) and the lines after it are read again as lines of their own;
* any other ``csv.Error`` rejects that record's first line with the parser's message.

Encoding: a UTF-8 BOM means UTF-8; otherwise each line is decoded as UTF-8 until one is not valid UTF-8,
and from then on the file is read as GB18030 (a superset of GBK and GB2312), which is how Excel on a
Chinese Windows saves CSV. Undecodable bytes become U+FFFD; NUL is dropped (never valid in a cell or SQL).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
from collections import deque
from collections.abc import Iterable, Iterator
from typing import IO

MAX_RECORD = 64 * 1024
"""Bytes of one line, and characters of one record (several lines when a quoted field spans them)."""
_CHUNK = 64 * 1024


@dataclasses.dataclass(frozen=True, slots=True)
class BadRecord:
    """A line that is not a CSV record: rejected with this code and reason."""

    code: str
    reason: str


def physical_lines(stream: IO[bytes], limit: int = MAX_RECORD) -> Iterator[bytes | None]:
    """Each line of ``stream`` with its line end; ``None`` for a line longer than ``limit`` (not kept)."""
    carry = b""
    skipping = False  # inside a line already reported as too long: drop until its end
    while chunk := stream.read(_CHUNK):
        lines = (carry + chunk).splitlines(keepends=True)
        carry = lines.pop() if not lines[-1].endswith(b"\n") else b""  # unfinished (a CR may precede LF)
        for line in lines:
            if skipping:
                skipping = False
            elif len(line) > limit:
                yield None
            else:
                yield line
        if len(carry) > limit:
            if not skipping:
                yield None
            skipping, carry = True, carry[-1:] if carry.endswith(b"\r") else b""
    if carry and not skipping and carry != b"\r":
        yield None if len(carry) > limit else carry


class DecodedLines:
    """Lines of a byte stream as text (``None`` for a line too long); ``encoding`` says what was found
    (utf-8, utf-8-bom or gb18030)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.encoding = "utf-8"

    def __iter__(self) -> Iterator[str | None]:
        first = True
        for raw in physical_lines(self.stream):
            if raw is None:
                first = False
                yield None
                continue
            if first:
                first = False
                if raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                    self.encoding = "utf-8-bom"
            yield self._decode(raw).replace("\x00", "")

    def _decode(self, raw: bytes) -> str:
        if self.encoding == "gb18030":
            return raw.decode("gb18030", errors="replace")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            if self.encoding == "utf-8-bom":  # declared UTF-8: keep it, mark the bad bytes
                return raw.decode("utf-8", errors="replace")
            self.encoding = "gb18030"  # GBK is a subset: Excel's "CSV" on a Chinese Windows
            return raw.decode("gb18030", errors="replace")


class _TooLong(Exception):
    pass


class _Lines:
    """The numbered lines fed to ``csv.reader``, remembering the current record's lines so that a bad record
    can be rejected at its first line and the rest read again."""

    def __init__(self, lines: Iterable[str | None]) -> None:
        self._source = iter(lines)
        self._number = 0
        self._again: deque[tuple[int, str | None]] = deque()
        self.record: list[tuple[int, str | None]] = []
        self._size = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if self._again:
            number, line = self._again.popleft()
        else:
            line = next(self._source)  # StopIteration ends the reader
            self._number += 1
            number = self._number
        self.record.append((number, line))
        if line is None:
            raise _TooLong
        self._size += len(line)
        if self._size > MAX_RECORD:
            raise _TooLong
        return line

    @property
    def start(self) -> int:
        return self.record[0][0] if self.record else self._number + 1

    def next_record(self) -> None:
        self.record, self._size = [], 0

    def reject_record(self) -> None:
        """Drop the record's first line; read its other lines again."""
        self._again.extendleft(reversed(self.record[1:]))
        self.next_record()


def records(lines: Iterable[str | None]) -> Iterator[tuple[int, list[str] | BadRecord]]:
    """(first line number, cells or BadRecord) for every record; blank lines are skipped."""
    source = _Lines(lines)
    while True:
        reader = csv.reader(source, strict=True)
        try:
            for row in reader:
                start = source.start
                source.next_record()
                if row and any(c.strip() for c in row):
                    yield start, row
            return
        except _TooLong:
            start, single = source.start, len(source.record) == 1
            bad = (
                BadRecord("contacts.too_long", f"line longer than {MAX_RECORD:,} bytes")
                if single
                else BadRecord("contacts.csv", f"a quoted field opened here is not closed within {MAX_RECORD:,} "
                               "characters; the lines after it are read on their own")
            )
        except csv.Error as e:
            start = source.start
            message = str(e)
            if message == "unexpected end of data":
                message = "a quoted field opened here is not closed before the end of the file"
            bad = BadRecord("contacts.csv", message)
        source.reject_record()
        yield start, bad
