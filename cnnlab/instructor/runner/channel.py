"""Framed bytes over a pair of pipes: the private line between the grader and one sandbox.

A frame is an 8-byte big-endian length followed by that many bytes. The trusted side treats every
byte from the sandbox as hostile: a frame longer than the caller's ``max_bytes`` is refused before
anything is allocated for it (``FrameTooLarge``), a frame that does not arrive in full within the
caller's ``timeout`` raises ``ChannelTimeout`` (the bytes received so far are kept, so a later
``recv`` continues the same frame), and a closed pipe raises ``ChannelClosed``. Nothing here
interprets a frame: that is the protocol's job.

Inside the sandbox the same class runs on file descriptors 3 (frames from the grader) and 4 (frames
to the grader): ``Channel(3, 4)``. Standard library only, because this module is importable there.
"""

from __future__ import annotations

import os
import select
import struct
import time

HEADER = struct.Struct(">Q")


class ChannelError(Exception):
    """Base class of everything a channel raises."""


class ChannelClosed(ChannelError):
    """The other end closed its pipe (or died) before a whole frame arrived."""


class ChannelTimeout(ChannelError):
    """No whole frame within the time allowed."""


class FrameTooLarge(ChannelError):
    """The other end announced a frame longer than the reader accepts."""


class Channel:
    """One duplex line: ``read_fd`` brings frames in, ``write_fd`` takes frames out.

    Args:
        read_fd: the pipe end frames are read from (made non-blocking).
        write_fd: the pipe end frames are written to (made non-blocking).
    """

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd, self.write_fd = read_fd, write_fd
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        self._buf = bytearray()  # bytes of the frame in progress (header included)
        self._broken: str | None = None  # why the stream is out of step, once it is

    def send(self, frame: bytes, timeout: float | None = 60.0) -> None:
        """Writes one frame; raises ``ChannelTimeout`` if the reader does not take it in time
        (a sandbox that stops reading cannot hang the grader) and ``ChannelClosed`` if the
        reader is gone."""
        data = memoryview(HEADER.pack(len(frame)) + bytes(frame))
        deadline = None if timeout is None else time.monotonic() + timeout
        while data:
            self._wait(self.write_fd, select.POLLOUT, deadline, "sending a frame")
            try:
                n = os.write(self.write_fd, data)
            except BlockingIOError:
                continue
            except OSError as e:  # the reader is gone, or the channel was closed under us
                raise ChannelClosed(f"the reader closed the channel ({e})") from None
            data = data[n:]

    def recv(self, timeout: float | None, max_bytes: int) -> bytes:
        """Reads one frame of at most ``max_bytes`` bytes within ``timeout`` seconds (None: wait
        for ever). Raises ``FrameTooLarge``, ``ChannelTimeout`` or ``ChannelClosed``."""
        if self._broken:
            raise ChannelClosed(self._broken)
        deadline = None if timeout is None else time.monotonic() + timeout
        need = HEADER.size
        while True:
            if len(self._buf) >= HEADER.size:
                (length,) = HEADER.unpack_from(self._buf)
                if length > max_bytes:
                    self._broken = (
                        f"a frame of {length} bytes was announced, more than the {max_bytes} "
                        "allowed; the stream is out of step since"
                    )
                    self._buf.clear()
                    raise FrameTooLarge(self._broken)
                need = HEADER.size + length
                if len(self._buf) >= need:
                    frame = bytes(self._buf[HEADER.size : need])
                    del self._buf[:need]
                    return frame
            self._wait(self.read_fd, select.POLLIN, deadline, "waiting for a frame")
            try:
                chunk = os.read(self.read_fd, min(need - len(self._buf), 1 << 20))
            except BlockingIOError:
                continue
            except OSError as e:  # closed under us (the sandbox was killed)
                raise ChannelClosed(f"the channel was closed ({e})") from None
            if not chunk:
                got = len(self._buf)
                raise ChannelClosed(
                    "the sender closed the channel"
                    + (f" with a frame incomplete ({got} bytes of it came)" if got else "")
                )
            self._buf += chunk

    def close(self) -> None:
        """Closes both pipe ends (idempotent)."""
        for name in ("read_fd", "write_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    @staticmethod
    def _wait(fd: int, event: int, deadline: float | None, doing: str) -> None:
        if fd < 0:
            raise ChannelClosed("the channel is closed")
        poller = select.poll()
        poller.register(fd, event)
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ChannelTimeout(f"timed out {doing}")
            if poller.poll(None if left is None else max(1, int(left * 1000))):
                return  # readable, writable, or hung up: the read/write says which
