"""proxy= and noproxy=, with the environment's https_proxy and no_proxy as
defaults, against a small CONNECT proxy started here: the vault's and Entra
ID's traffic goes through it (TLS verified inside the tunnel), noproxy=
sends a host around it, the managed identity endpoints never go through
it, a proxy that refuses (403, 407, nothing listening) gives one line
naming it, and its credentials appear in no log, status or command line."""

import base64
import json
import os
import select
import socket
import subprocess
import threading
from urllib.parse import urlsplit

import pytest

import util
from conftest import option_string, run_kvfs, secret_options
from test_auth import appservice_env, mi_options, one_line

PASSWORD = "pw-Xyzzy-7"


class ConnectProxy:
    """An HTTP proxy on 127.0.0.1 that tunnels CONNECT and nothing else.
    Records each request's target (host:port for a CONNECT, the URL of
    anything else) and Proxy-Authorization header; refuse = 403 or 407
    answers every request so; close_tunnels() ends the open tunnels, so
    that the next request needs a new CONNECT."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.targets = []
        self.auth = []
        self.refuse = None
        self.open = set()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, userinfo=""):
        return "http://%s127.0.0.1:%d" % (userinfo, self.port)

    def seen(self):
        with self.lock:
            return list(self.targets)

    def close_tunnels(self):
        with self.lock:
            conns, self.open = self.open, set()
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.sock.close()
        self.close_tunnels()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        with conn:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            method, target = lines[0].split(" ")[:2]
            auth = [l.split(":", 1)[1].strip() for l in lines[1:]
                    if l.lower().startswith("proxy-authorization:")]
            with self.lock:
                self.targets.append(target)
                self.auth.extend(auth)
                refuse = self.refuse
            if refuse or method != "CONNECT":
                code = refuse or 405
                extra = ("Proxy-Authenticate: Basic realm=\"test\"\r\n"
                         if code == 407 else "")
                conn.sendall(("HTTP/1.1 %d Refused\r\n%sContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n" % (code, extra)).encode())
                return
            host, port = target.rsplit(":", 1)
            try:
                up = socket.create_connection((host, int(port)), timeout=10)
            except OSError:
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
                return
            with up:
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                with self.lock:
                    self.open.add(conn)
                self._pump(conn, up)

    @staticmethod
    def _pump(a, b):
        peer = {a: b, b: a}
        while True:
            try:
                ready, _, _ = select.select([a, b], [], [], 60)
            except (OSError, ValueError):
                return
            if not ready:
                return
            for s in ready:
                try:
                    data = s.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                try:
                    peer[s].sendall(data)
                except OSError:
                    return


@pytest.fixture
def proxy():
    p = ConnectProxy()
    yield p
    p.close()


def hostport(url):
    u = urlsplit(url)
    return "%s:%d" % (u.hostname, u.port or (443 if u.scheme == "https" else 80))


def read_cert(m, name="www"):
    with open(m.p("certificates", name, "cert.pem")) as f:
        assert f.read().startswith("-----BEGIN CERTIFICATE-----")


def read_status(m):
    with open(m.p(".kvfs", "status")) as f:
        return f.read()


def test_proxy_option_carries_login_and_vault(mount, az, proxy):
    m = mount(proxy=proxy.url())
    read_cert(m)
    seen = proxy.seen()
    assert hostport(az.info["authority"]) in seen, seen
    assert hostport(az.info["vault_url"]) in seen, seen
    # nothing but tunnels: TLS (verified by ca_file=) runs inside them
    assert all(not t.startswith("http") for t in seen), seen
    assert az.log("vault"), "the vault answered through the tunnel"


def test_https_proxy_environment_is_the_default(mount, az, proxy):
    m = mount(env={"https_proxy": proxy.url()})
    read_cert(m)
    assert hostport(az.info["vault_url"]) in proxy.seen()


def test_proxy_option_wins_over_the_environment(mount, az, proxy):
    other = ConnectProxy()
    try:
        m = mount(proxy=proxy.url(), env={"https_proxy": other.url()})
        read_cert(m)
        assert hostport(az.info["vault_url"]) in proxy.seen()
        assert other.seen() == []
    finally:
        other.close()


@pytest.mark.parametrize("where", ["option", "environment"])
@pytest.mark.parametrize("noproxy", ["127.0.0.1", "127.0.0.0/8",
                                     "example.com+127.0.0.1"])
def test_noproxy_sends_the_vault_around_the_proxy(mount, az, proxy, noproxy,
                                                   where):
    if where == "option":
        m = mount(proxy=proxy.url(), noproxy=noproxy)
    else:
        m = mount(env={"https_proxy": proxy.url(),
                       "no_proxy": noproxy.replace("+", ",")})
    read_cert(m)
    assert az.log("vault")
    assert proxy.seen() == []


def test_noproxy_naming_another_host_still_proxies(mount, az, proxy):
    # a comma inside an -o value is written "\\,", as libfuse has it
    m = mount(proxy=proxy.url(), noproxy="example.com\\,10.0.0.0/8")
    read_cert(m)
    assert hostport(az.info["vault_url"]) in proxy.seen()


@pytest.mark.parametrize("source", ["imds", "appservice"])
def test_managed_identity_is_never_proxied(mount, az, proxy, source):
    env = appservice_env(az) if source == "appservice" else None
    env = dict(env or {}, https_proxy=proxy.url())
    m = mount(env=env, **mi_options(az))
    read_cert(m)
    identity = az.log("appservice" if source == "appservice" else "imds")
    assert identity, "the identity endpoint was asked directly"
    seen = proxy.seen()
    assert hostport(az.info["vault_url"]) in seen, seen
    mi_port = ":%d" % urlsplit(az.info["imds_url"]).port
    assert not [t for t in seen if mi_port in t], seen


@pytest.mark.parametrize("code", [403, 407])
def test_refusing_proxy_fails_the_mount_naming_it(az, proxy, tmp_path, code):
    proxy.refuse = code
    opts = secret_options(az)
    r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"],
                  str(tmp_path)],
                 env={"https_proxy": proxy.url("user:%s@" % PASSWORD)})
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "proxy 'http://127.0.0.1:%d'" % proxy.port in line, line
    assert str(code) in line, line
    assert PASSWORD not in line and "user" not in line, line
    assert proxy.seen(), "kvfs asked the proxy"
    assert not util.is_mounted(str(tmp_path))


def test_proxy_not_listening_fails_the_mount_naming_it(az, tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    opts = secret_options(az)
    opts["deadline"] = 2
    r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"],
                  str(tmp_path)],
                 env={"https_proxy": "http://user:%s@127.0.0.1:%d"
                      % (PASSWORD, port)})
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "cannot reach proxy 'http://127.0.0.1:%d'" % port in line, line
    assert PASSWORD not in line, line


@pytest.mark.parametrize("value", ["socks5://127.0.0.1:1080",
                                   "http://127.0.0.1:3128/path",
                                   "http://127.0.0.1:99999"])
def test_bad_proxy_url_is_one_line(az, tmp_path, value):
    r = run_kvfs(["-f", "-o", option_string(secret_options(az)),
                  az.info["vault_url"], str(tmp_path)],
                 env={"HTTPS_PROXY": value})
    assert r.returncode == 2
    assert "invalid HTTPS_PROXY" in one_line(r.stderr)


def test_credentials_in_proxy_option_are_refused(az, tmp_path, proxy):
    opts = dict(secret_options(az), proxy=proxy.url("user:%s@" % PASSWORD))
    r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"],
                  str(tmp_path)])
    assert r.returncode == 2
    line = one_line(r.stderr)
    assert "https_proxy" in line and PASSWORD not in line, line
    assert proxy.seen() == []


def test_proxy_credentials_stay_out_of_logs_status_and_ps(mount, az, proxy):
    m = mount(loglevel="debug", deadline=3,
              env={"https_proxy": proxy.url("user:%s@" % PASSWORD)})
    read_cert(m)
    want = "Basic " + base64.b64encode(
        ("user:" + PASSWORD).encode()).decode()
    assert want in proxy.auth, "the credentials reached the proxy"

    # The proxy refuses from now on; the next fetch needs a new tunnel.
    proxy.refuse = 407
    proxy.close_tunnels()
    other = next(n for n in az.info["certificates"] if n != "www")
    with pytest.raises(OSError):
        read_cert(m, other)
    status = json.loads(read_status(m))
    assert "proxy 'http://127.0.0.1:%d'" % proxy.port in status["last_error"]
    assert "407" in status["last_error"]

    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True,
                        text=True).stdout
    with open("/proc/%d/cmdline" % m.proc.pid, "rb") as f:
        cmdline = f.read().decode(errors="replace")
    for where, text in (("stderr", m.stderr()), ("status", read_status(m)),
                        ("ps", ps), ("cmdline", cmdline)):
        assert PASSWORD not in text, where
    assert "127.0.0.1:%d" % proxy.port in m.stderr(), "the debug log names it"
