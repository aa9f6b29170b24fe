"""Talking to a running model: the prediction request `pack predict` sends, and its answer read
as it arrives (a streamed answer chunk by chunk, the way the model yields it).

JSON by default; with binary=True the request and the answer are msgpack in Truss's binary
format (msgpack-numpy arrays and Truss's extensions), encoded and decoded by the runtime's own
serialization module so both sides read the same bytes the same way. That module (and msgpack,
numpy) is imported only when a binary request is made.
"""

from __future__ import annotations

import base64
import http.client
import importlib.util
import json
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from ..errors import PackError

JSON_TYPE = "application/json"
# Truss's binary contract: the request's Content-Type selects msgpack, the answer comes back as it.
BINARY_TYPE = "application/octet-stream"
READ_SIZE = 64 * 1024
DETAIL_CHARS = 2000


def _encode_msgpack(payload: object) -> bytes:
    from ..runtime.serving import serialization

    _need_msgpack()
    try:
        return serialization.to_msgpack(payload)
    except (TypeError, ValueError, OverflowError) as exc:
        raise PackError(f"the input cannot be sent as msgpack: {exc}",
                        hint="send JSON-like values, numpy arrays, dates, decimals or UUIDs") from None


def _decode_msgpack(body: bytes) -> object:
    from ..runtime.serving import serialization
    from ..runtime.serving.http_errors import HttpError

    _need_msgpack()
    try:
        return serialization.parse_msgpack(body)
    except HttpError:  # not msgpack: a model may answer a binary request with raw bytes
        return body
    except ImportError as exc:  # an array in the answer, and no numpy here to rebuild it
        raise PackError(f"the answer holds a numpy array and numpy cannot be imported here: {exc}",
                        hint="pip install numpy (beside pack) to decode it") from None


def _need_msgpack() -> None:
    if importlib.util.find_spec("msgpack") is None:
        raise PackError("binary (msgpack) predictions need the `msgpack` package, which is not installed",
                        hint="pip install msgpack (beside pack), or send JSON without --binary")


def _jsonable(value: Any) -> object:
    """json.dumps's fallback for what a msgpack answer may hold."""
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(value).decode("ascii")
    if hasattr(value, "tolist") and hasattr(value, "dtype"):  # numpy arrays and scalars
        return value.tolist()
    return str(value)  # dates, decimals, UUIDs, complex numbers


def answer_text(value: object) -> str:
    """An answer as `pack predict` prints it: a string as it is, anything else as indented JSON
    (numpy arrays as lists, bytes as UTF-8 text or `base64:...`)."""
    return value if isinstance(value, str) else json.dumps(value, indent=2, default=_jsonable)


class PredictAnswer:
    """A model's answer, open: status and content type known, the body not read yet.

    Iterating yields the body's bytes as they arrive (one streamed chunk at a time); value()
    reads the rest and decodes it. Close it (or use it as a context manager) when done."""

    def __init__(self, url: str, connection: http.client.HTTPConnection, response: http.client.HTTPResponse,
                 binary: bool, timeout: float):
        self.url = url
        self._connection = connection
        self._response = response
        self._binary = binary
        self._timeout = timeout
        self.status = response.status
        self.content_type = (response.getheader("Content-Type") or "").split(";")[0].strip().lower()

    @property
    def is_json(self) -> bool:
        return self.content_type == JSON_TYPE

    @property
    def is_msgpack(self) -> bool:
        """A whole msgpack answer to a binary request (a streamed one is raw chunks)."""
        return self._binary and self.content_type == BINARY_TYPE and not self.is_stream

    @property
    def is_stream(self) -> bool:
        """Sent in chunks as the model produced them (a generator's output)."""
        return bool(self._response.chunked)

    def __iter__(self) -> Iterator[bytes]:
        try:
            while chunk := self._response.read1(READ_SIZE):
                yield chunk
        except TimeoutError:
            raise PackError(f"the answer from {self.url} stopped for {self._timeout:g} s",
                            hint="pass a longer --timeout for models that pause between chunks") from None
        except (http.client.HTTPException, OSError) as exc:
            raise PackError(f"the answer from {self.url} broke off: {type(exc).__name__}: {exc}",
                            hint="see the model server's log (docker logs <name>)") from None
        finally:
            self.close()

    def body(self) -> bytes:
        return b"".join(self)

    def value(self) -> object:
        """The whole answer decoded: JSON, msgpack for a binary request, else text (a JSON
        document when the text is one)."""
        body = self.body()
        if self.is_msgpack:
            return _decode_msgpack(body)
        try:
            return json.loads(body)
        except ValueError:
            return body.decode("utf-8", "replace")

    def close(self) -> None:
        self._response.close()
        self._connection.close()

    def __enter__(self) -> PredictAnswer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _connection(url: str, timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PackError(f"--url {url!r} is not an http(s) URL", hint="e.g. --url http://127.0.0.1:8080")
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    try:
        connection = kind(parts.hostname, parts.port, timeout=timeout)
    except ValueError as exc:  # a malformed port
        raise PackError(f"--url {url!r}: {exc}", hint="e.g. --url http://127.0.0.1:8080") from None
    return connection, parts.path.rstrip("/")


def predict_stream(url: str, payload: object, *, model: str = "model", binary: bool = False,
                   headers: Mapping[str, str] | None = None, timeout: float = 600.0) -> PredictAnswer:
    """POST a payload to a running model's predict route and return its answer, open: iterate it
    for the body's chunks as they arrive, or call value(). timeout: seconds to connect, and the
    longest wait for the next bytes of the answer. headers go with the request (they win over
    the Content-Type pack sets)."""
    body = _encode_msgpack(payload) if binary else json.dumps(payload).encode()
    connection, prefix = _connection(url, timeout)
    route = f"{prefix}/v1/models/{model}:{'predict_binary' if binary else 'predict'}"
    sent = {"Content-Type": BINARY_TYPE if binary else JSON_TYPE}
    for key, value in (headers or {}).items():
        sent = {k: v for k, v in sent.items() if k.lower() != key.lower()}
        sent[key] = value
    try:
        connection.request("POST", route, body=body, headers=sent)
        response = connection.getresponse()
    except ValueError as exc:  # http.client refuses a header name or value
        connection.close()
        raise PackError(f"a request header is not valid HTTP: {exc}",
                        hint="header names are letters, digits and -; values are one line") from None
    except TimeoutError:
        connection.close()
        raise PackError(f"no answer from {url} within {timeout:g} s",
                        hint="pass a longer --timeout for slow models") from None
    except (http.client.HTTPException, OSError) as exc:
        connection.close()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        raise PackError(f"no model answers at {url}: {reason}",
                        hint="start one with `pack run DIR`, or pass --url") from None
    answer = PredictAnswer(url, connection, response, binary, timeout)
    if answer.status >= 400:
        with answer:
            try:
                detail = response.read(DETAIL_CHARS * 4).decode("utf-8", "replace")[:DETAIL_CHARS]
            except (http.client.HTTPException, OSError):
                detail = ""
        raise PackError(f"the model answered HTTP {answer.status}: {detail}",
                        hint="check the input, or the container logs (docker logs <name>)")
    return answer


def predict(url: str, payload: object, *, model: str = "model", binary: bool = False,
            headers: Mapping[str, str] | None = None, timeout: float = 600.0) -> object:
    """POST a payload to a running model's predict route and return the decoded answer (a
    streamed answer is read to its end first)."""
    with predict_stream(url, payload, model=model, binary=binary, headers=headers, timeout=timeout) as answer:
        return answer.value()


__all__ = ["PredictAnswer", "answer_text", "predict", "predict_stream"]
