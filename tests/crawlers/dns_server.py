"""A tiny authoritative DNS server on loopback (UDP) whose answers the test scripts, for rebinding tests."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset


class ScriptedDNS:
    """Answers A queries for each name from a list of addresses, one per query; the last one repeats.

    ``queries`` counts the A queries per name, so a test sees how often the crawler really looked up.
    """

    def __init__(self) -> None:
        self.answers: dict[str, list[str]] = {}
        self.queries: dict[str, int] = {}
        self._lock = threading.Lock()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def script(self, name: str, *addresses: str) -> None:
        with self._lock:
            self.answers[name.lower().rstrip(".")] = list(addresses)
            self.queries[name.lower().rstrip(".")] = 0

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        response.flags |= 0x0400  # authoritative
        question = query.question[0]
        name = question.name.to_text().lower().rstrip(".")
        with self._lock:
            script = self.answers.get(name)
            if script is None:
                response.set_rcode(dns.rcode.NXDOMAIN)
                return response
            if question.rdtype != dns.rdatatype.A:
                return response  # no AAAA: an empty answer
            count = self.queries[name]
            self.queries[name] = count + 1
            address = script[min(count, len(script) - 1)]
        response.answer.append(dns.rrset.from_text(question.name, 0, "IN", "A", address))
        return response

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                query = dns.message.from_wire(data)
            except dns.exception.DNSException:
                continue
            self.sock.sendto(self._answer(query).to_wire(), peer)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


def scripted_dns() -> Iterator[ScriptedDNS]:
    server = ScriptedDNS()
    try:
        yield server
    finally:
        server.close()
