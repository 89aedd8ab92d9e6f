"""End to end with a real consumer (issue 5): nginx serves HTTPS on
loopback with ssl_certificate and ssl_certificate_key pointing into the
mount, and curl, trusting only the fake's root CA, verifies it."""

import os
import shutil
import socket
import ssl
import subprocess
import time

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
events {{ worker_connections 32; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name www.kvfs.test kvfs.test;
        ssl_certificate     {mnt}/certificates/www/fullchain.pem;
        ssl_certificate_key {mnt}/certificates/www/privkey.pem;
        location / {{ return 200 "served by nginx from kvfs\\n"; }}
    }}
}}
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, log, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("nginx exited with %d:\n%s"
                                 % (proc.returncode, open(log).read()))
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("nginx does not listen on %d" % port)


@pytest.fixture
def nginx(mount, tmp_path):
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed (tests/install-deps)")
    m = mount()
    tmp = tmp_path / "nginx"
    tmp.mkdir()
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(CONF.format(tmp=tmp, port=port, mnt=m.path))
    r = subprocess.run([NGINX, "-t", "-p", str(tmp), "-c", str(conf)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    log = str(tmp / "nginx.out")
    with open(log, "w") as out:
        proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(conf)],
                                stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out)
    try:
        wait_listening(port, proc, log)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("host", ["www.kvfs.test", "kvfs.test"])
def test_nginx_serves_the_vaults_certificate(nginx, fake, host):
    port = nginx
    root = fake.info["root_ca"]
    r = subprocess.run(
        ["curl", "-sS", "-v", "--cacert", root,
         "--resolve", "%s:%d:127.0.0.1" % (host, port),
         "https://%s:%d/" % (host, port)],
        capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "served by nginx from kvfs\n"
    assert "SSL certificate verify ok" in r.stderr, r.stderr
    assert "CN=www.kvfs.test" in r.stderr, r.stderr


def test_nginx_sends_leaf_and_intermediate(nginx, fake):
    port = nginx
    ctx = ssl.create_default_context(cafile=fake.info["root_ca"])
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        with ctx.wrap_socket(sock, server_hostname="www.kvfs.test") as tls:
            der = tls.getpeercert(binary_form=True)
            peer = tls.getpeercert()
    leaf = x509.load_der_x509_certificate(der)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value \
        == "www.kvfs.test"
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert set(san.value.get_values_for_type(x509.DNSName)) == \
        {"www.kvfs.test", "kvfs.test"}
    assert ("commonName", "www.kvfs.test") in \
        [a for rdn in peer["subject"] for a in rdn]
    # the handshake verified only because nginx sent the intermediate from
    # fullchain.pem: the client trusts the root alone
    with open(fake.info["root_ca"], "rb") as f:
        root = x509.load_pem_x509_certificate(f.read())
    assert leaf.issuer != root.subject


def test_curl_refuses_without_the_root(nginx):
    port = nginx
    r = subprocess.run(
        ["curl", "-sS", "--resolve", "www.kvfs.test:%d:127.0.0.1" % port,
         "https://www.kvfs.test:%d/" % port],
        capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
