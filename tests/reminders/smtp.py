"""A real SMTP server for the tests (aiosmtpd on a free port), and what it received."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    """Messages the server accepted (answered 250 to), in arrival order."""

    messages: list[EmailMessage] = field(default_factory=list)
    # Called with the message before the server answers; return an SMTP reply to refuse it.
    before_accept: Callable[[EmailMessage], str | None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if self.before_accept is not None:
            refusal = self.before_accept(message)
            if refusal is not None:
                return refusal
        with self.lock:
            self.messages.append(message)
        return "250 Message accepted for delivery"

    def received(self) -> list[EmailMessage]:
        with self.lock:
            return list(self.messages)

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.received() if m["To"] == address]


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()
