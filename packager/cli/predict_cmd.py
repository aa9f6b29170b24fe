"""`pack predict`: one request to a running model, its answer printed as it arrives."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click

from .. import api
from ..errors import PackError
from . import output

# RFC 9110's token: what a header name may be made of.
HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEADER_FIX = "write it as curl does, e.g. -H 'X-Request-Id: 42' (repeat -H for more headers)"


def parse_headers(items: tuple[str, ...]) -> dict[str, str]:
    """-H KEY:VALUE items as a mapping; a malformed one is a usage error naming the fix."""
    headers: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not HEADER_NAME.fullmatch(key):
            raise click.BadParameter(f"{item!r} is not KEY:VALUE with a header name as KEY; {HEADER_FIX}",
                                     param_hint="-H/--header")
        if "\r" in value or "\n" in value:
            raise click.BadParameter(f"the value of header {key!r} spans lines; a header value is one line",
                                     param_hint="-H/--header")
        headers[key] = value
    return headers


@click.command("predict")
@click.option("--url", default="http://127.0.0.1:8080", show_default=True, help="Where the model runs.")
@click.option("-d", "--data", help="JSON input.")
@click.option("-f", "--file", "data_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="File holding the JSON input.")
@click.option("--model", default="model", show_default=True, help="Model name in the route.")
@click.option("--binary", is_flag=True, help="Send the input as msgpack and decode a msgpack answer (Truss's "
                                             "binary format: numpy arrays print as lists).")
@click.option("-H", "--header", "header_items", multiple=True, metavar="KEY:VALUE",
              help="Extra request header, as curl's -H; repeatable.")
@click.option("--timeout", default=600.0, show_default=True,
              help="Seconds to connect, and the longest wait for the next part of the answer.")
def predict_command(url: str, data: str | None, data_file: Path | None, model: str, binary: bool,
                    header_items: tuple[str, ...], timeout: float) -> None:
    """Send one prediction request to a running model and print the answer: JSON indented, a
    streamed answer as it arrives."""
    headers = parse_headers(header_items)
    if data is not None and data_file is None:
        raw = data
    elif data_file is not None and data is None:
        raw = data_file.read_text(encoding="utf-8")
    else:
        raise PackError("give the input with exactly one of -d JSON or -f FILE",
                        hint="""e.g. pack predict -d '{"text": "hello"}'""")
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PackError(f"the input is not JSON: {exc}", hint="quote it for the shell: -d '{\"a\": 1}'") from None
    with api.predict_stream(url, payload, model=model, binary=binary, headers=headers, timeout=timeout) as answer:
        if answer.is_json or answer.is_msgpack:
            output.text(api.answer_text(answer.value()))
        else:
            output.stream(answer)
