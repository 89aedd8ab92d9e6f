"""HTTP plumbing shared by every server of the fake.

FakeServer: a threading HTTP/1.1 server with TCP_NODELAY on every accepted
socket (FACTS.md: otherwise each keep-alive request waits ~40 ms for the
delayed ACK) and, for HTTPS, a TLS handshake done in the connection's own
thread so that one slow client never blocks the accept loop.

BaseHandler: parses the request once, applies injected faults, calls the
subclass's route(), writes compact JSON, and records the request in the log.
A request that gets an answer is recorded before the answer's headers go
out, so a client that has its answer always finds the request in /log
(duration and status are those of the answer as it starts); one that gets
none (reset, stall, a client gone) is recorded when the handler ends.
"""

import json
import select
import socket
import ssl
import struct
import sys
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

from state import NEXTLINK_KINDS

JSON_TYPE = "application/json; charset=utf-8"


class FakeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, addr, handler, fake, name, ssl_ctx=None, logged=True):
        self.fake = fake
        self.name = name
        self.ssl_ctx = ssl_ctx
        self.logged = logged
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, ssl.SSLError, socket.timeout, OSError)):
            return
        super().handle_error(request, client_address)

    @property
    def port(self):
        return self.server_address[1]


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fakeazure"
    sys_version = ""
    timeout = 300

    # --- connection set-up ------------------------------------------------

    def setup(self):
        self._dead = False
        ctx = self.server.ssl_ctx
        if ctx is not None:
            try:
                self.request.settimeout(10)
                self.request = ctx.wrap_socket(self.request, server_side=True)
            except (ssl.SSLError, OSError):
                self._dead = True
        super().setup()

    def handle(self):
        if self._dead:
            return
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, socket.timeout):
            pass

    def finish(self):
        try:
            super().finish()
        except (OSError, ValueError):
            pass

    def log_message(self, fmt, *args):
        pass

    # --- request dispatch -------------------------------------------------

    def do_GET(self):
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_GET

    @property
    def fake(self):
        return self.server.fake

    @property
    def state(self):
        return self.server.fake.state

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            chunks = []
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self):
        self.started = time.time()
        target = self.path
        if target.startswith("http://") or target.startswith("https://"):
            target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/"
        self.url_path, _, self.raw_query = target.partition("?")
        self.params = {}
        for k, v in parse_qsl(self.raw_query, keep_blank_values=True):
            self.params.setdefault(k, v)
        self.status_sent = 0
        self.recorded = False
        self.truncate = False
        self.request_id = str(uuid.uuid4())
        try:
            self.body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        try:
            fault = None
            if self.server.logged:
                fault = self.state.take_fault(self.service_name(), self.url_path,
                                              exclude=NEXTLINK_KINDS, query=self.raw_query)
            if fault is None or not self._apply_fault(fault):
                self.route()
        except (ConnectionError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except Exception:
            traceback.print_exc()
            if not self.status_sent:
                try:
                    self.send_json(500, self.internal_error_body())
                except OSError:
                    pass
        finally:
            self.record()

    def record(self):
        """Put this request in the log, once."""
        if self.recorded or not self.server.logged:
            return
        self.recorded = True
        self.state.record({
            "server": self.service_name(),
            "method": self.command,
            "path": self.url_path,
            "query": self.raw_query,
            "params": self.params,
            "auth": bool(self.headers.get("Authorization")),
            "status": self.status_sent,
            "time": self.started,
            "duration": time.time() - self.started,
            "client_request_id": self.headers.get("x-ms-client-request-id"),
        })

    def route(self):
        raise NotImplementedError

    def service_name(self):
        """Name of the emulated service, for the log and for fault matching."""
        return self.server.name

    # --- faults -----------------------------------------------------------

    def _apply_fault(self, fault):
        """Serve the fault; False when the request should still be handled."""
        kind = fault.kind
        if kind == "delay":
            time.sleep(fault.delay)
            return False
        if kind == "truncate":
            self.truncate = True
            return False
        if kind == "reset":
            self.reset_connection()
            return True
        if kind == "malformed":
            self.send_raw(200, b'{"value":[{"id":"https://', JSON_TYPE)
            return True
        if kind == "redirect":
            self.send_raw(302, b"", JSON_TYPE,
                          {"Location": self.fake.urls["foreign"] + self.path_and_query()})
            return True
        if kind == "huge":
            self.send_huge(int(fault.size_mb * (1 << 20)))
            return True
        if kind == "stall":
            self.stall(fault.hold)
            return True
        if kind in ("404", "410", "429", "500", "503"):
            status = int(kind)
            headers = {}
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            self.send_json(status, self.fault_body(status), headers)
            return True
        return False

    def reset_connection(self):
        """Close without a response; SO_LINGER 0 makes it a TCP RST."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()
        except OSError:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def send_huge(self, size):
        """200 with a body of `size` bytes, chunked (no Content-Length, so the
        client cannot refuse it up front), streamed without holding it."""
        self.status_sent = 200
        self.send_response_only(200)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", JSON_TYPE)
        self.send_header("Transfer-Encoding", "chunked")
        for k, v in self.extra_headers().items():
            self.send_header(k, v)
        self.record()
        self.end_headers()
        chunk = b'{"value":[' + b" " * (65536 - 10)
        sent = 0
        while sent < size:
            n = min(len(chunk), size - sent)
            self.wfile.write(b"%x\r\n" % n + chunk[:n] + b"\r\n")
            sent += n
            chunk = b" " * 65536
        self.wfile.write(b"0\r\n\r\n")

    def stall(self, hold):
        """Accept the request and never answer: hold the connection for
        `hold` seconds or until the client goes away, then close it."""
        self.close_connection = True
        end = time.time() + hold
        sock = self.connection
        while time.time() < end:
            try:
                readable, _, _ = select.select([sock], [], [], 0.2)
                if readable and not sock.recv(1):
                    break  # the client closed its side
            except (OSError, ValueError, ssl.SSLError):
                break

    def path_and_query(self):
        return self.url_path + ("?" + self.raw_query if self.raw_query else "")

    def fault_body(self, status):
        return {"error": {"code": "ServiceUnavailable" if status >= 500 else "Throttled",
                          "message": "injected fault %d" % status}}

    def internal_error_body(self):
        return {"error": {"code": "InternalServerError", "message": "fake Azure crashed"}}

    # --- responses --------------------------------------------------------

    def extra_headers(self):
        return {}

    def send_json(self, status, obj, headers=None):
        body = json.dumps(obj, separators=(",", ":")).encode("utf-8")
        self.send_raw(status, body, JSON_TYPE, headers)

    def send_raw(self, status, body, content_type=JSON_TYPE, headers=None):
        self.status_sent = status
        self.send_response_only(status)
        self.send_header("Date", self.date_time_string())
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in self.extra_headers().items():
            self.send_header(k, v)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.record()
        self.end_headers()
        if self.command == "HEAD":
            return
        if self.truncate:
            self.wfile.write(body[: len(body) // 2])
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        self.wfile.write(body)

    def read_json_body(self):
        if not self.body:
            return {}
        return json.loads(self.body.decode("utf-8"))


def make_ssl_context(cert_file, key_file):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(cert_file, key_file)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx
