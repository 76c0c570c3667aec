"""Round trips to PostgreSQL, counted on the wire: a loopback proxy between a server and PostgreSQL.

A round trip is a message after which the client waits for PostgreSQL's answer: Sync (the
end of an extended-protocol exchange: a prepared statement's Bind and Execute), Flush (asyncpg
prepares a statement with Parse, Describe and Flush) or Query (a simple-protocol statement:
asyncpg's BEGIN, COMMIT, ROLLBACK). Connecting is not counted.
"""

import asyncio
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# Messages that come before the startup message and carry no type byte.
_SSL_REQUEST, _GSSENC_REQUEST = 80877103, 80877104


class CountingProxy:
    """Forwards 127.0.0.1:PORT to PostgreSQL's TARGET port; ROUND_TRIPS counts what clients sent."""

    def __init__(self, target: int) -> None:
        self.target, self.round_trips, self.port = target, 0, 0
        self._connections: set[asyncio.Task[None]] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._loop.run_until_complete, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._stop = asyncio.Event()
        self._ready.set()
        async with server:
            await self._stop.wait()
        for connection in self._connections:
            connection.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target)
            await asyncio.gather(
                self._pump(client_reader, server_writer, count=True),
                self._pump(server_reader, client_writer, count=False),
                return_exceptions=True,
            )
        except asyncio.CancelledError:
            pass  # the proxy stops; a cancelled task here would be reported by asyncio's stream callback
        finally:
            self._connections.discard(task)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool) -> None:
        pending, typed = b"", False
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
                if not count:
                    continue
                pending += data
                while True:
                    if not typed:  # SSLRequest, GSSENCRequest, then the startup message: length first
                        if len(pending) < 8 or len(pending) < (length := struct.unpack("!i", pending[:4])[0]):
                            break
                        typed = struct.unpack("!i", pending[4:8])[0] not in (_SSL_REQUEST, _GSSENC_REQUEST)
                        pending = pending[length:]
                        continue
                    if len(pending) < 5 or len(pending) < 1 + (length := struct.unpack("!i", pending[1:5])[0]):
                        break
                    if pending[:1] in (b"S", b"H", b"Q"):
                        self.round_trips += 1
                    pending = pending[1 + length :]
        finally:
            writer.close()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@contextmanager
def counting_proxy(target: int) -> Iterator[CountingProxy]:
    proxy = CountingProxy(target)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
