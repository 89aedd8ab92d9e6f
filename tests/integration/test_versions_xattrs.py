"""versions/ and the extended attributes: every version of the
vault is a directory with its own files and attributes, fetched when
versions/ is listed or a version looked up; user.kvfs.* on certificate and
version directories and files equal the vault's."""

import base64
import errno
import hashlib
import json
import math
import os
import stat
import subprocess
import time

import pytest

from test_secrets import (CLOSED, openable, public_of_cert, public_of_key,
                          read, state_by_name)
from util import vault_requests

FILES = {"cert.pem", "cert.der", "chain.pem", "fullchain.pem",
         "privkey.pem", "bundle.pem", "cert.pfx"}
XATTRS = ("id", "version", "x5t", "sha256", "enabled", "nbf", "exp",
          "expires_in", "created", "updated", "subject", "tags")


def version_gets(fake, name):
    return [e for e in vault_requests(fake)
            if e["path"].rstrip("/") == "/certificates/%s/versions" % name]


def test_versions_list_equals_vault(shared_mount, fake):
    for name, cert in state_by_name(fake).items():
        if name.startswith("bulk-") and name != "bulk-000":
            continue
        got = os.listdir(shared_mount.p("certificates", name, "versions"))
        assert sorted(got) == sorted(v["version"] for v in cert["versions"]), name
    assert len(state_by_name(fake)["mail"]["versions"]) == 3


def test_versions_are_fetched_on_use_and_paged(mount, az):
    m = mount()
    d = m.p("certificates", "mail")
    az.reset_log()
    assert "versions" in os.listdir(d)
    os.stat(os.path.join(d, "versions"))
    assert version_gets(az, "mail") == []
    names = os.listdir(os.path.join(d, "versions"))
    assert len(version_gets(az, "mail")) == math.ceil(len(names) / 25)
    for v in names:
        os.stat(os.path.join(d, "versions", v))
    os.listdir(os.path.join(d, "versions"))
    assert len(version_gets(az, "mail")) == 1


def test_versions_span_pages(mount, az):
    name = "many-versions"
    az.create(name, kty="EC", crv="P-256", content_type="pem")
    try:
        for _ in range(27):
            az.rotate(name)
        want = sorted(v["version"] for v in az.certificate(name)["versions"])
        assert len(want) == 28
        m = mount()
        az.reset_log()
        assert sorted(os.listdir(m.p("certificates", name, "versions"))) == want
        assert len(version_gets(az, name)) == 2
    finally:
        az.delete(name)


def test_each_version_has_its_own_files_and_attributes(shared_mount, fake):
    cert = state_by_name(fake)["mail"]
    seen_keys = set()
    for v in cert["versions"]:
        d = shared_mount.p("certificates", "mail", "versions", v["version"])
        assert set(os.listdir(d)) == FILES
        st = os.stat(d)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o555
        assert st.st_mtime == v["updated"] and st.st_atime == v["created"]
        der = read(os.path.join(d, "cert.der"))
        assert der == base64.b64decode(v["cer"])
        f = os.stat(os.path.join(d, "privkey.pem"))
        assert stat.S_IMODE(f.st_mode) == 0o400
        assert f.st_mtime == v["updated"]
        key = public_of_key(os.path.join(d, "privkey.pem"))
        assert key == public_of_cert(os.path.join(d, "cert.pem"))
        seen_keys.add(key)
    assert len(seen_keys) == 3  # a key per version
    latest = shared_mount.p("certificates", "mail", "versions", cert["latest"])
    for fn in ("cert.der", "fullchain.pem", "privkey.pem"):
        assert read(os.path.join(latest, fn)) == \
            read(shared_mount.p("certificates", "mail", fn))


def test_unknown_versions_do_not_exist(shared_mount):
    d = shared_mount.p("certificates", "mail", "versions")
    for bad in ("0" * 32, "pending", "a_b", "x" * 128):
        with pytest.raises(FileNotFoundError):
            os.stat(os.path.join(d, bad))
    with pytest.raises(FileNotFoundError):
        os.stat(shared_mount.p("certificates", "mail", "versions2"))


def test_disabled_version_is_closed(shared_mount, fake):
    cert = state_by_name(fake)["disabled-cert"]
    d = shared_mount.p("certificates", "disabled-cert", "versions",
                       cert["latest"])
    for fn in ("cert.pem", "privkey.pem"):
        assert stat.S_IMODE(os.stat(os.path.join(d, fn)).st_mode) == 0
        with pytest.raises(PermissionError):
            open(os.path.join(d, fn), "rb")


def xattrs(path):
    names = os.listxattr(path)
    return {n: os.getxattr(path, n).decode() for n in names}


def openssl_subject(der):
    r = subprocess.run(["openssl", "x509", "-inform", "DER", "-noout",
                        "-subject", "-nameopt", "RFC2253"], input=der,
                       capture_output=True, check=True)
    out = r.stdout.decode().strip()
    assert out.startswith("subject=")
    return out[len("subject="):]


def expected(fake, cert, v):
    der = base64.b64decode(v["cer"])
    return {
        "user.kvfs.version": v["version"],
        "user.kvfs.x5t": v["x5t"],
        "user.kvfs.sha256": hashlib.sha256(der).hexdigest(),
        "user.kvfs.enabled": "true" if v["enabled"] else "false",
        "user.kvfs.nbf": str(v["nbf"]),
        "user.kvfs.exp": str(v["exp"]),
        "user.kvfs.created": str(v["created"]),
        "user.kvfs.updated": str(v["updated"]),
        "user.kvfs.subject": openssl_subject(der),
        "user.kvfs.id": "%s/certificates/%s/%s" % (
            fake.info["vault_url"], cert["name"], v["version"]),
    }


def check_xattrs(path, want, tags):
    got = xattrs(path)
    assert sorted(got) == sorted("user.kvfs." + x for x in XATTRS), path
    assert json.loads(got.pop("user.kvfs.tags")) == tags, path
    # exp - now: a generous bound, the read is not timed
    left = int(want["user.kvfs.exp"]) - time.time()
    assert abs(int(got.pop("user.kvfs.expires_in")) - left) < 3600, path
    assert got == want, path


def test_xattrs_equal_the_vault(shared_mount, fake):
    state = state_by_name(fake)
    for name in openable(fake) + list(CLOSED):
        cert = state[name]
        v = next(x for x in cert["versions"] if x["version"] == cert["latest"])
        want = expected(fake, cert, v)
        d = shared_mount.p("certificates", name)
        check_xattrs(d, want, cert["tags"] or {})
        check_xattrs(os.path.join(d, "cert.pem"), want, cert["tags"] or {})
        if name == "www":
            assert json.loads(os.getxattr(d, "user.kvfs.tags")) == \
                {"env": "prod", "team": "web"}
            for fn in FILES:
                check_xattrs(os.path.join(d, fn), want, cert["tags"])
    cert = state["mail"]
    for v in cert["versions"]:
        d = shared_mount.p("certificates", "mail", "versions", v["version"])
        check_xattrs(d, expected(fake, cert, v), cert["tags"] or {})
        check_xattrs(os.path.join(d, "privkey.pem"), expected(fake, cert, v),
                     cert["tags"] or {})


def test_getfattr_dump_shows_them(shared_mount):
    r = subprocess.run(["getfattr", "-d", shared_mount.p("certificates", "www")],
                       capture_output=True, text=True, check=True)
    for x in XATTRS:
        assert "\nuser.kvfs.%s=" % x in r.stdout, r.stdout


def test_no_xattrs_above_certificates_and_none_writable(shared_mount):
    for p in (shared_mount.path, shared_mount.p("certificates"),
              shared_mount.p("certificates", "www", "versions")):
        assert os.listxattr(p) == []
        with pytest.raises(OSError) as e:
            os.getxattr(p, "user.kvfs.id")
        assert e.value.errno == errno.ENODATA
    with pytest.raises(OSError) as e:
        os.getxattr(shared_mount.p("certificates", "www"), "user.other")
    assert e.value.errno == errno.ENODATA
    with pytest.raises(OSError) as e:
        os.setxattr(shared_mount.p("certificates", "www"), "user.kvfs.id", b"x")
    assert e.value.errno == errno.EROFS


def test_namespaces_without_attributes_are_not_supported(mount):
    """security.* and system.* are EOPNOTSUPP, not ENODATA: ls -l
    remembers that per file system instead of asking for every file
    (counted in libfuse's debug log)."""
    m = mount(debug=True)
    for p in (m.path, m.p("certificates", "www"), m.p("certificates", "www", "cert.pem")):
        for name in ("security.selinux", "system.posix_acl_access"):
            with pytest.raises(OSError) as e:
                os.getxattr(p, name)
            assert e.value.errno == errno.EOPNOTSUPP, (p, name)
    before = m.stderr().count("opcode: GETXATTR")
    subprocess.run(["ls", "-l", m.p("certificates")], capture_output=True, check=True)
    asked = m.stderr().count("opcode: GETXATTR") - before
    assert len(os.listdir(m.p("certificates"))) > 10
    assert 1 <= asked <= 3, asked


def test_a_version_costs_its_bundle_and_secret(mount, az):
    cert = state_by_name(az)["mail"]
    old = cert["versions"][0]["version"]
    assert old != cert["latest"]
    m = mount()
    # version ids are case-insensitive, like names
    d = m.p("certificates", "mail", "versions", old.upper())
    az.reset_log()
    assert read(os.path.join(d, "cert.der")) == \
        base64.b64decode(cert["versions"][0]["cer"])
    read(os.path.join(d, "privkey.pem"))
    paths = [e["path"].rstrip("/") for e in vault_requests(az)]
    assert paths == ["/certificates/mail/versions",
                     "/certificates/mail/" + old,
                     "/secrets/mail/" + old], paths
