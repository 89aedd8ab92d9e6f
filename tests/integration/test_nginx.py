"""End to end with a real consumer: nginx serves HTTPS on
loopback with ssl_certificate and ssl_certificate_key pointing into the
mount, and curl, trusting only the fake's root CA, verifies it.  After a
rotation in the vault and a revalidation (SIGHUP), `nginx -s reload`
serves the new certificate, and with on_change= nobody has to run it."""

import base64
import contextlib
import os
import pwd
import signal
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
master_process {master};
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
        server_name {server_names};
        ssl_certificate     {mnt}/certificates/{name}/fullchain.pem;
        ssl_certificate_key {mnt}/certificates/{name}/privkey.pem;
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


@contextlib.contextmanager
def nginx_serving(mnt, tmp_path, name="www", server_names="www.kvfs.test kvfs.test",
                  master=False):
    """nginx serving certificates/<name>/ of the mount at mnt; yields
    (port, the nginx command line without the action).  master: as in
    production, a master process (which reads the certificates, at start
    and on reload) and a worker; without, one process."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed (tests/install-deps)")
    tmp = tmp_path / "nginx"
    tmp.mkdir()
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(CONF.format(tmp=tmp, port=port, mnt=mnt, name=name,
                                server_names=server_names,
                                master="on" if master else "off"))
    cmd = [NGINX, "-p", str(tmp), "-c", str(conf)]
    r = subprocess.run(cmd + ["-t"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    log = str(tmp / "nginx.out")
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=out)
    try:
        wait_listening(port, proc, log)
        yield port, cmd
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def nginx(mount, tmp_path):
    m = mount()
    with nginx_serving(m.path, tmp_path) as (port, _):
        yield port


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


README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "README.md")


def readme_rules_recipe():
    """The README's nginx recipe: (the rules file's line, the fstab line's
    options)."""
    with open(README) as f:
        lines = f.read().splitlines()
    rules = [line for line in lines
             if line.startswith("echo '") and "> /etc/kvfs/rules" in line]
    fstab = [line.split()[3] for line in lines
             if "rules_file=/etc/kvfs/rules" in line and "fuse.kvfs" in line]
    assert len(rules) == 1 and len(fstab) == 1, (rules, fstab)
    return rules[0].split("'")[1], fstab[0].split(",")


def test_readme_rules_recipe_serves_nginx_and_no_other_root_program(
        mount, fake, tmp_path):
    """The README's recipe as written (but for auth=imds and on_change=,
    which test_on_change covers): www owned by www-data, its key opened by
    nginx, refused to root's cat."""
    line, options = readme_rules_recipe()
    rules = tmp_path / "rules"
    rules.write_text(line + "\n")
    os.chmod(rules, 0o644)
    assert "allow_other" in options
    m = mount(rules_file=str(rules), allow_other=True)
    www = pwd.getpwnam("www-data")
    st = os.stat(m.p("certificates", "www", "privkey.pem"))
    assert (st.st_uid, st.st_gid) == (www.pw_uid, www.pw_gid)
    assert st.st_mode & 0o777 == 0o400
    r = subprocess.run(["cat", m.p("certificates", "www", "privkey.pem")],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "Permission denied" in r.stderr, r
    with nginx_serving(m.path, tmp_path) as (port, _):
        leaf = x509.load_der_x509_certificate(
            served_leaf(fake, port, "www.kvfs.test"))
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value \
        == "www.kvfs.test"
    allowed = [x for x in m.stderr().splitlines()
               if "key read allowed: certificates/www/privkey.pem" in x]
    assert allowed and all("exe=%s" % os.path.realpath(NGINX) in x
                           for x in allowed), m.stderr()


def served_leaf(fake, port, host):
    """The DER of the certificate nginx serves for host, verified against
    the fake's root CA."""
    ctx = ssl.create_default_context(cafile=fake.info["root_ca"])
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        with ctx.wrap_socket(sock, server_hostname=host) as tls:
            return tls.getpeercert(binary_form=True)


def latest_der(fake, name):
    cert = fake.certificate(name)
    ver = next(v for v in cert["versions"] if v["version"] == cert["latest"])
    return base64.b64decode(ver["cer"])


def test_nginx_reload_serves_the_rotated_certificate(mount, fake, tmp_path):
    name, host = "nginx-rotated", "rotated.kvfs.test"
    fake.create(name, kty="EC", dns_names=[host])
    try:
        m = mount()
        with nginx_serving(m.path, tmp_path, name, host, master=True) as (port, cmd):
            started = time.monotonic()
            before = served_leaf(fake, port, host)
            assert before == latest_der(fake, name)
            rotated = fake.rotate(name)
            m.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 15
            while os.getxattr(os.path.join(m.path, "certificates", name),
                              "user.kvfs.x5t").decode() != rotated["x5t"]:
                assert time.monotonic() < deadline, "the mount never showed the rotation"
                time.sleep(0.05)
            # nginx holds what it read until it is told to reload
            assert served_leaf(fake, port, host) == before
            # a process's opens of a directory keep the version they saw
            # for 5 s after its latest (KVFS_CACHE_PIN_SECONDS): past them
            time.sleep(max(0.0, 5.5 - (time.monotonic() - started)))
            r = subprocess.run(cmd + ["-s", "reload"], capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            served_rotated(fake, port, host, name, before)
    finally:
        fake.delete(name)


def served_rotated(fake, port, host, name, before, wait=15):
    """Wait until nginx serves another certificate than before for host:
    the latest version of name."""
    after, deadline = before, time.monotonic() + wait
    while after == before:
        assert time.monotonic() < deadline, "nginx still serves the old certificate"
        time.sleep(0.1)
        after = served_leaf(fake, port, host)
    assert after == latest_der(fake, name)
    leaf = x509.load_der_x509_certificate(after)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value \
        == name + ".kvfs.test"


def test_on_change_reloads_nginx_with_no_manual_step(mount, fake, tmp_path):
    # The README's recipe: on_change= runs a script that reloads nginx.
    name, host = "nginx-onchange", "onchange.kvfs.test"
    fake.create(name, kty="EC", dns_names=[host])
    reload_cmd = tmp_path / "nginx-command"
    script = tmp_path / "reload-nginx"
    script.write_text('#!/bin/sh\nexec $(cat %s) -s reload\n' % reload_cmd)
    os.chmod(script, 0o755)
    try:
        m = mount(on_change=str(script))
        with nginx_serving(m.path, tmp_path, name, host, master=True) as (port, cmd):
            started = time.monotonic()
            reload_cmd.write_text(" ".join(cmd))
            before = served_leaf(fake, port, host)
            assert before == latest_der(fake, name)
            # past the 5 s that nginx's own opens keep the version they
            # saw (KVFS_CACHE_PIN_SECONDS), as a rotation long after start
            time.sleep(max(0.0, 5.5 - (time.monotonic() - started)))
            fake.rotate(name)
            m.proc.send_signal(signal.SIGHUP)
            served_rotated(fake, port, host, name, before, wait=60)
    finally:
        fake.delete(name)
