"""Just enough HTTP/1.1 for health checks, the data plane and the control API: read a message
head, read a body framed by Content-Length or chunked encoding, write a response."""

import asyncio

MAX_HEAD = 64 * 1024


class Head:
    def __init__(self, first_line: str, headers: list[tuple[str, str]]):
        self.first_line = first_line
        self.headers = headers

    def get(self, name: str, default: str | None = None) -> str | None:
        lowered = name.lower()
        for key, value in self.headers:
            if key.lower() == lowered:
                return value
        return default


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    """The next message head, or None when the peer closed the connection cleanly."""
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as err:
        if not err.partial:
            return None
        raise
    lines = raw.decode("latin-1").split("\r\n")
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return Head(lines[0], headers)


async def read_body(reader: asyncio.StreamReader, head: Head, until_eof: bool) -> bytes:
    """The body after `head`: by Content-Length, chunked, or (responses only) until EOF."""
    length = head.get("content-length")
    if length is not None:
        return await reader.readexactly(int(length))
    if (head.get("transfer-encoding") or "").lower() == "chunked":
        chunks = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            if size == 0:
                # Trailers, up to the empty line.
                while (await reader.readuntil(b"\r\n")) != b"\r\n":
                    pass
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    if until_eof:
        return await reader.read()
    return b""


def response_bytes(status: int, reason: str, headers: list[tuple[str, str]], body: bytes, close: bool) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}"]
    for name, value in headers:
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def status_of(head: Head) -> tuple[int, str]:
    parts = head.first_line.split(" ", 2)
    return int(parts[1]), parts[2] if len(parts) > 2 else ""
