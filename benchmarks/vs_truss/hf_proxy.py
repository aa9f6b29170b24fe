"""huggingface.co for truss_transfer, which has the host built in: an HTTPS proxy that answers
CONNECT huggingface.co:443 with TLS of its own (a throwaway CA from trustme) and passes the
decrypted bytes to the local HF stand-in (tests.fixtures.hf_hub.MockHub).

truss_transfer 0.0.43 (what `truss image build-context` calls to write the model_cache manifest)
reads no HF_ENDPOINT; it does honour HTTPS_PROXY and, through rustls-native-certs, SSL_CERT_FILE.
So the Truss side of the benchmark runs `truss image build-context` with

    HTTPS_PROXY=http://127.0.0.1:<port>   SSL_CERT_FILE=<this proxy's CA>

and nothing else of Truss is touched. CONNECT to any other host is refused (403): nothing leaves
this machine through the proxy.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

HF_HOST = "huggingface.co"


class HfProxy:
    """`with HfProxy(hub.url) as proxy: env = proxy.env()`; runs its own event loop thread."""

    def __init__(self, hub_url: str) -> None:
        import trustme

        target = urlsplit(hub_url)
        self._target = (target.hostname or "127.0.0.1", target.port or 80)
        self._ca = trustme.CA()
        self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(HF_HOST).configure_cert(self._context)
        self._dir = tempfile.TemporaryDirectory(prefix="vs-truss-proxy-")
        self.ca_file = Path(self._dir.name) / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_file))
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.base_events.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0
        self.tunnels = 0

    def env(self) -> dict[str, str]:
        """What a process needs to reach huggingface.co through this proxy."""
        return {"HTTPS_PROXY": f"http://127.0.0.1:{self.port}", "https_proxy": f"http://127.0.0.1:{self.port}",
                "SSL_CERT_FILE": str(self.ca_file), "NO_PROXY": "", "no_proxy": ""}

    def __enter__(self) -> HfProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
        self._dir.cleanup()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            method, authority, _ = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ", 2)
            if method != "CONNECT" or authority.rsplit(":", 1)[0] != HF_HOST:
                writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                await writer.drain()
                return
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            await writer.start_tls(self._context)
            self.tunnels += 1
            up_reader, up_writer = await asyncio.open_connection(*self._target)
            try:
                await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
            finally:
                up_writer.close()
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError, ValueError):
            pass  # a client that went away or spoke something else: nothing to serve
        finally:
            writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    finally:
        if writer.can_write_eof():
            writer.write_eof()
