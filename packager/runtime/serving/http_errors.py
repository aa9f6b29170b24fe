"""Truss's error responses: body {"error": <message>} plus two headers that tell a gateway where
the error came from (source 04 = the model server) and whose fault it is (600 downstream / the
model, 700 the client, 500 unexpected)."""

from __future__ import annotations

import json

from .http_server import HttpResponse

ERROR_SOURCE = "04"
UNEXPECTED, DOWNSTREAM, CLIENT = 500, 600, 700
MODEL_ERROR_MESSAGE = "Internal Server Error (in model/chainlet)."


def error_headers(code: int) -> list[tuple[str, str]]:
    return [("X-BASETEN-ERROR-SOURCE", ERROR_SOURCE), ("X-BASETEN-ERROR-CODE", f"{code:03d}")]


class HttpError(Exception):
    """Raised anywhere below a route; the route turns it into an error response."""

    def __init__(self, status: int, message: str, code: int = CLIENT):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def response(self) -> HttpResponse:
        return error_response(self.status, self.message, self.code)


def error_response(status: int, message: object, code: int) -> HttpResponse:
    body = json.dumps({"error": message}, default=str).encode()
    return HttpResponse(status, body, error_headers(code), "application/json")


def not_ready(model_name: str) -> HttpError:
    return HttpError(503, f"Model with name {model_name} is not ready.", DOWNSTREAM)
