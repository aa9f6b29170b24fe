"""Structured streaming (`chains.streaming`) and the frame format pack uses between chainlets.

Frame = 1-byte tag + 4-byte big-endian payload length + payload. Tags: HEADER=2, ITEM=3,
FOOTER=4 (Truss's format), plus ERROR=5 (pack: a RemoteErrorDetail as JSON, ends the stream).
Between pack chainlets every streamed `str`/`bytes` item travels as one ITEM frame (selected by
the request header FRAMED_STREAM_HEADER), so the caller receives exactly the items yielded.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import AsyncIterator, Iterator
from typing import Any, Generic, Optional, TypeVar

import pydantic

FRAMED_STREAM_HEADER = "x-pack-chains-stream"
FRAMED_STREAM_VALUE = "framed-v1"
_HEADER = struct.Struct(">BI")
MAX_FRAME_BYTES = 1 << 31


class Tag(enum.IntEnum):
    START = 1  # pack: first frame of a framed chainlet stream (payload FRAMED_STREAM_VALUE)
    HEADER = 2
    ITEM = 3
    FOOTER = 4
    ERROR = 5


def frame(tag: Tag, payload: bytes) -> bytes:
    return _HEADER.pack(int(tag), len(payload)) + payload


# A framed answer starts with this frame, so a caller can tell it from a server that ignored
# the request header and sent raw bytes.
START_FRAME = frame(Tag.START, FRAMED_STREAM_VALUE.encode())


class FrameDecoder:
    """Incremental: feed network chunks of any size, get back whole frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[tuple[Tag, bytes]]:
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            tag, length = _HEADER.unpack_from(self._buffer)
            if length > MAX_FRAME_BYTES:
                raise ValueError(f"stream frame of {length} bytes is too large")
            end = _HEADER.size + length
            if len(self._buffer) < end:
                return
            payload = bytes(self._buffer[_HEADER.size:end])
            del self._buffer[:end]
            try:
                yield Tag(tag), payload
            except ValueError:
                raise ValueError(f"unknown stream frame tag {tag}") from None

    def finish(self) -> None:
        if self._buffer:
            raise ValueError(f"the stream ended inside a frame ({len(self._buffer)} bytes left over)")


HeaderT = TypeVar("HeaderT", bound=pydantic.BaseModel)
ItemT = TypeVar("ItemT", bound=pydantic.BaseModel)
FooterT = TypeVar("FooterT", bound=pydantic.BaseModel)


class StreamTypes(Generic[ItemT, HeaderT, FooterT]):
    def __init__(self, item_type: type[ItemT], header_type: Optional[type[HeaderT]] = None,
                 footer_type: Optional[type[FooterT]] = None):
        self.item_type = item_type
        self.header_type = header_type
        self.footer_type = footer_type


def stream_types(item_type: type[ItemT], *, header_type: Optional[type[HeaderT]] = None,
                 footer_type: Optional[type[FooterT]] = None) -> StreamTypes[ItemT, HeaderT, FooterT]:
    return StreamTypes(item_type, header_type, footer_type)


class StreamWriter(Generic[ItemT, HeaderT, FooterT]):
    def __init__(self, types: StreamTypes[ItemT, HeaderT, FooterT]):
        self._types = types
        self._started = False
        self._ended = False

    def _check(self, what: str) -> None:
        if self._ended:
            raise ValueError(f"cannot write a {what} after the footer")

    def yield_header(self, header: HeaderT) -> bytes:
        self._check("header")
        if self._types.header_type is None:
            raise ValueError("the stream types declare no header_type")
        if self._started:
            raise ValueError("the header must be the first thing written")
        self._started = True
        return frame(Tag.HEADER, header.model_dump_json().encode())

    def yield_item(self, item: ItemT) -> bytes:
        self._check("item")
        if self._types.header_type is not None and not self._started:
            raise ValueError("write the header first (the stream types declare a header_type)")
        self._started = True
        return frame(Tag.ITEM, item.model_dump_json().encode())

    def yield_footer(self, footer: FooterT) -> bytes:
        self._check("footer")
        if self._types.footer_type is None:
            raise ValueError("the stream types declare no footer_type")
        self._ended = True
        return frame(Tag.FOOTER, footer.model_dump_json().encode())


def stream_writer(types: StreamTypes[ItemT, HeaderT, FooterT]) -> StreamWriter[ItemT, HeaderT, FooterT]:
    return StreamWriter(types)


class StreamReader(Generic[ItemT, HeaderT, FooterT]):
    def __init__(self, types: StreamTypes[ItemT, HeaderT, FooterT], stream: AsyncIterator[bytes]):
        self._types = types
        self._stream = stream
        self._decoder = FrameDecoder()
        self._pending: list[tuple[Tag, bytes]] = []
        self._footer: Optional[bytes] = None
        self._header_read = False
        self._done = False

    async def _next(self) -> Optional[tuple[Tag, bytes]]:
        while not self._pending:
            if self._done:
                return None
            try:
                chunk = await self._stream.__anext__()
            except StopAsyncIteration:
                self._done = True
                self._decoder.finish()
                return None
            self._pending.extend(self._decoder.feed(chunk))
        return self._pending.pop(0)

    async def read_header(self) -> HeaderT:
        if self._types.header_type is None:
            raise ValueError("the stream types declare no header_type")
        got = await self._next()
        if got is None or got[0] != Tag.HEADER:
            raise ValueError("the stream does not start with a header")
        self._header_read = True
        return self._types.header_type.model_validate_json(got[1])

    async def read_items(self) -> AsyncIterator[ItemT]:
        if self._types.header_type is not None and not self._header_read:
            raise ValueError("the stream has a header: call read_header() first")
        while True:
            got = await self._next()
            if got is None:
                return
            tag, payload = got
            if tag == Tag.ITEM:
                yield self._types.item_type.model_validate_json(payload)
            elif tag == Tag.FOOTER:
                self._footer = payload
                return
            else:
                raise ValueError(f"unexpected {tag.name} frame among the items")

    async def read_footer(self) -> FooterT:
        if self._types.footer_type is None:
            raise ValueError("the stream types declare no footer_type")
        if self._footer is None:
            got = await self._next()
            if got is None or got[0] != Tag.FOOTER:
                raise ValueError("the stream has no footer")
            self._footer = got[1]
        return self._types.footer_type.model_validate_json(self._footer)


def stream_reader(types: StreamTypes[ItemT, HeaderT, FooterT],
                  stream: AsyncIterator[bytes]) -> StreamReader[ItemT, HeaderT, FooterT]:
    return StreamReader(types, stream)


def encode_item(item: Any) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8")
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    raise TypeError(f"streamed items must be str or bytes, got {type(item).__name__}")
