"""The secrets and keys collections beside certificates (collections=):
secrets/<name> is exactly the latest value and secrets/.versions/<name>/
every version; keys/<name>/ holds the public half (public.pem,
public.jwk) of every version.  Each listing costs its pages, each object
one GET on first use, shared by concurrent readers, and a stat none;
attributes close, time and describe every object as they do
certificates."""

import errno
import json
import math
import os
import re
import signal
import stat
import subprocess
import time

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from test_revalidation import wait_until
from util import read_concurrently, vault_log

ALL = "all"
KEY_FILES = {"public.pem", "public.jwk"}
EC_HASH = {"P-256": hashes.SHA256, "P-384": hashes.SHA384, "P-521": hashes.SHA512}


def own(fake, kind):
    """The vault's secrets or keys of their own, by name (those behind a
    certificate are the certificate's)."""
    return {o["name"]: o for o in fake.state()[kind]}


def latest(obj):
    return next(v for v in obj["versions"] if v["version"] == obj["latest"])


def gets(log, kind, name):
    """The GETs of one object (any version, not its versions listing)."""
    prefix = "/%s/%s" % (kind, name.lower())
    return [e for e in log
            if e["path"].rstrip("/").lower() == prefix
            or (e["path"].lower().startswith(prefix + "/")
                and "/versions" not in e["path"].lower())]


def list_pages(log, kind):
    return [e for e in log if e["path"].rstrip("/") == "/" + kind]


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def all_mount(fake, tmp_path_factory):
    """One read-only mount of every collection, for the tests that look."""
    from conftest import start_mount
    mnt = tmp_path_factory.mktemp("all")
    m = start_mount(fake, mnt, str(mnt) + ".stderr", collections=ALL).wait_mounted()
    yield m
    m.unmount()


# ---- keys ----

def test_keys_listing_costs_its_pages(mount, az):
    az.reset_log()
    m = mount(collections=ALL)
    listed = os.listdir(m.p("keys"))
    # the vault lists its own keys and those behind certificates
    n = len(az.state()["keys"]) + len(az.state()["certificates"])
    assert len(list_pages(vault_log(az), "keys")) == math.ceil(n / 25)
    assert set(own(az, "keys")) <= set(listed)
    assert gets(vault_log(az), "keys", "rsa-key") == []
    for name in listed:
        st = os.stat(m.p("keys", name))
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o555
    assert [e for e in vault_log(az) if e["path"].startswith("/keys/")] == []


def test_managed_keys_are_absent(all_mount, fake):
    listed = set(os.listdir(all_mount.p("keys")))
    for c in fake.state()["certificates"]:
        assert c["name"] not in listed


def test_key_files_are_the_public_half(all_mount, fake):
    for name, k in own(fake, "keys").items():
        v = latest(k)
        d = all_mount.p("keys", name)
        if not v["enabled"]:
            continue
        assert set(os.listdir(d)) == KEY_FILES | {"versions"}
        for f in KEY_FILES:
            st = os.stat(os.path.join(d, f))
            assert stat.S_IMODE(st.st_mode) == 0o444, (name, f)
            assert st.st_mtime == v["updated"] and st.st_atime == v["created"]
        pem = read(os.path.join(d, "public.pem"))
        assert pem == v["public_pem"].encode(), name
        r = subprocess.run(["openssl", "pkey", "-pubin", "-noout"], input=pem,
                           capture_output=True, check=False)
        assert r.returncode == 0, (name, r.stderr)
        jwk = read(os.path.join(d, "public.jwk"))
        assert jwk.endswith(b"\n")
        assert json.loads(jwk) == v["jwk"], name


@pytest.mark.parametrize("name", ["rsa-key", "ec-p256-key", "ec-p384-key",
                                  "ec-p521-key", "hsm-rsa-key", "hsm-ec-key"])
def test_public_pem_verifies_the_vaults_signature(all_mount, fake, name):
    pub = serialization.load_pem_public_key(read(all_mount.p("keys", name, "public.pem")))
    data = b"signed by the vault"
    sig = fake.sign(name, data)["signature"]
    kty = fake.key(name)["kty"]
    if kty.startswith("RSA"):
        pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
    else:
        crv = latest(fake.key(name))["jwk"]["crv"]
        pub.verify(sig, data, ec.ECDSA(EC_HASH[crv]()))
    with pytest.raises(Exception):
        pub.verify(sig, data + b"!", *((padding.PKCS1v15(), hashes.SHA256())
                                       if kty.startswith("RSA")
                                       else (ec.ECDSA(EC_HASH[crv]()),)))


def test_key_versions(all_mount, fake):
    k = fake.key("rotated-key")
    d = all_mount.p("keys", "rotated-key", "versions")
    assert sorted(os.listdir(d)) == sorted(v["version"] for v in k["versions"])
    for v in k["versions"]:
        vd = os.path.join(d, v["version"])
        assert set(os.listdir(vd)) == KEY_FILES
        assert json.loads(read(os.path.join(vd, "public.jwk"))) == v["jwk"]
        assert read(os.path.join(vd, "public.pem")) == v["public_pem"].encode()
        assert os.stat(vd).st_mtime == v["updated"]


def test_disabled_key_is_closed_by_its_attributes(all_mount, fake):
    d = all_mount.p("keys", "disabled-key")
    for f in KEY_FILES:
        p = os.path.join(d, f)
        assert stat.S_IMODE(os.stat(p).st_mode) == 0
        with pytest.raises(PermissionError):
            open(p, "rb")
    # its attributes are still there to see
    assert os.getxattr(d, "user.kvfs.enabled") == b"false"


def test_key_xattrs(all_mount, fake):
    for name in ("rsa-key", "ec-p384-key"):
        k = fake.key(name)
        v = latest(k)
        for p in (all_mount.p("keys", name), all_mount.p("keys", name, "public.pem")):
            got = {x: os.getxattr(p, x).decode() for x in os.listxattr(p)
                   if x != "user.kvfs.crv" or v["jwk"].get("crv")}
            assert got["user.kvfs.id"] == v["jwk"]["kid"]
            assert got["user.kvfs.version"] == v["version"]
            assert got["user.kvfs.enabled"] == "true"
            assert got["user.kvfs.created"] == str(v["created"])
            assert got["user.kvfs.updated"] == str(v["updated"])
            assert got["user.kvfs.kty"] == v["jwk"]["kty"]
            assert got["user.kvfs.key_ops"] == ",".join(v["jwk"]["key_ops"])
            assert json.loads(got["user.kvfs.tags"]) == v["tags"]
            assert "user.kvfs.x5t" not in got
        size = int(os.getxattr(all_mount.p("keys", name), "user.kvfs.key_size"))
        if v["jwk"]["kty"].startswith("RSA"):
            assert size == 2048
            with pytest.raises(OSError) as e:
                os.getxattr(all_mount.p("keys", name), "user.kvfs.crv")
            assert e.value.errno == errno.ENODATA
        else:
            assert size == 384
            assert os.getxattr(all_mount.p("keys", name), "user.kvfs.crv") == b"P-384"


def test_key_one_get_for_concurrent_first_readers(mount, az):
    m = mount(collections=ALL)
    az.reset_log()
    p = m.p("keys", "ec-p256-key", "public.pem")
    want = latest(az.key("ec-p256-key"))["public_pem"].encode()

    def check(_):
        assert read(p) == want

    assert read_concurrently(check, list(range(8))) == []
    assert len(gets(vault_log(az), "keys", "ec-p256-key")) == 1
    read(p)
    read(m.p("keys", "ec-p256-key", "public.jwk"))
    assert len(gets(vault_log(az), "keys", "ec-p256-key")) == 1


def test_key_rotation_seen_after_revalidation(mount, az):
    name = "collections-rotating-key"
    az.create_key(name, kty="EC", crv="P-256")
    try:
        m = mount(collections=ALL)
        p = m.p("keys", name, "public.jwk")
        old = json.loads(read(p))
        with open(p, "rb") as held:
            az.rotate(name, kind="keys")
            new = latest(az.key(name))["jwk"]
            assert new != old
            m.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: json.loads(subprocess.run(
                ["cat", p], capture_output=True, check=True).stdout) == new,
                15, "the rotated key")
            # an open file keeps the bytes it was opened with
            assert json.loads(held.read()) == old
        assert len(os.listdir(m.p("keys", name, "versions"))) == 2
    finally:
        az.delete(name, kind="keys")


# ---- secrets ----

def test_default_mount_shows_certificates_only(shared_mount):
    assert sorted(os.listdir(shared_mount.path)) == [".kvfs", "certificates"]
    for c in ("secrets", "keys"):
        with pytest.raises(FileNotFoundError):
            os.stat(shared_mount.p(c))


def test_all_collections_in_table_order(all_mount):
    assert sorted(os.listdir(all_mount.path)) == [".kvfs", "certificates", "keys", "secrets"]
    assert os.stat(all_mount.path).st_nlink == 2 + 3 + 1


def test_secrets_listing_costs_its_pages_and_no_get(mount, az):
    az.reset_log()
    m = mount(collections=ALL)
    n = len(az.state()["secrets"]) + len(az.state()["certificates"])
    assert len(list_pages(vault_log(az), "secrets")) == math.ceil(n / 25)
    az.reset_log()
    listed = os.listdir(m.p("secrets"))
    assert ".versions" in listed
    assert set(own(az, "secrets")) <= set(listed)
    for name in listed:
        os.stat(m.p("secrets", name))
    # ls -l: the listing was there; no value is fetched to be stat'ed
    assert [e for e in vault_log(az) if e["path"].startswith("/secrets")] == []
    st = os.stat(m.p("secrets", ".versions"))
    assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o555


def test_managed_secrets_are_absent(all_mount, fake):
    listed = set(os.listdir(all_mount.p("secrets")))
    for c in fake.state()["certificates"]:
        assert c["name"] not in listed


def test_secret_bytes_are_exactly_the_value(all_mount, fake):
    secrets = own(fake, "secrets")
    assert latest(secrets["newline-secret"])["value"].endswith("\n")
    assert len(latest(secrets["big-secret"])["value"]) == 25600
    now = time.time()
    for name, s in secrets.items():
        v = latest(s)
        if not v["enabled"] or (v["exp"] and v["exp"] <= now) or \
                (v["nbf"] and v["nbf"] > now):
            continue
        p = all_mount.p("secrets", name)
        assert read(p) == v["value"].encode(), name
        st = os.stat(p)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o400, name
        assert st.st_uid == os.getuid()
        assert st.st_mtime == v["updated"] and st.st_atime == v["created"], name


def test_empty_secret_is_an_empty_file(mount, az):
    name = "collections-empty-secret"
    az.create_secret(name, value="")
    try:
        m = mount(collections=ALL)
        assert read(m.p("secrets", name)) == b""
        assert len(gets(vault_log(az), "secrets", name)) == 1
    finally:
        az.delete(name, kind="secrets")


def test_secret_versions(all_mount, fake):
    s = fake.secret("rotated-secret")
    d = all_mount.p("secrets", ".versions", "rotated-secret")
    assert sorted(os.listdir(d)) == sorted(v["version"] for v in s["versions"])
    for v in s["versions"]:
        p = os.path.join(d, v["version"])
        assert read(p) == v["value"].encode()
        st = os.stat(p)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o400
        assert st.st_mtime == v["updated"]
    assert read(all_mount.p("secrets", "rotated-secret")) == latest(s)["value"].encode()
    assert sorted(os.listdir(all_mount.p("secrets", ".versions"))) == \
        sorted(n for n in os.listdir(all_mount.p("secrets")) if n != ".versions")


@pytest.mark.parametrize("name", ["disabled-secret", "expired-secret", "future-secret"])
def test_closed_secret_is_0000_and_eacces(mount, az, name):
    m = mount(collections=ALL)
    az.reset_log()
    p = m.p("secrets", name)
    assert stat.S_IMODE(os.stat(p).st_mode) == 0
    with pytest.raises(PermissionError):
        open(p, "rb")
    # closed by its attributes: nothing asked of the vault
    assert gets(vault_log(az), "secrets", name) == []


def test_secret_key_mode(mount):
    m = mount(collections=ALL, key_mode="0440")
    assert stat.S_IMODE(os.stat(m.p("secrets", "db-password")).st_mode) == 0o440


def test_secret_xattrs(all_mount, fake):
    for name in ("app-config", "tagged-secret"):
        v = latest(fake.secret(name))
        p = all_mount.p("secrets", name)
        names = set(os.listxattr(p))
        assert names == {"user.kvfs." + x for x in (
            "id", "version", "enabled", "nbf", "exp", "created", "updated",
            "content_type", "tags")}
        got = {x: os.getxattr(p, x).decode() for x in names
               if x != "user.kvfs.content_type" or v["content_type"]}
        assert got["user.kvfs.id"].endswith("/secrets/%s/%s" % (name, v["version"]))
        assert got["user.kvfs.version"] == v["version"]
        assert got["user.kvfs.enabled"] == "true"
        assert got["user.kvfs.created"] == str(v["created"])
        assert got["user.kvfs.updated"] == str(v["updated"])
        assert json.loads(got["user.kvfs.tags"]) == v["tags"]
        if v["content_type"]:
            assert got["user.kvfs.content_type"] == v["content_type"]
    assert os.getxattr(all_mount.p("secrets", "app-config"),
                       "user.kvfs.content_type") == b"application/json"


def test_secret_one_get_for_concurrent_first_readers(mount, az):
    m = mount(collections=ALL)
    az.reset_log()
    p = m.p("secrets", "db-password")
    want = latest(az.secret("db-password"))["value"].encode()

    def check(_):
        assert read(p) == want

    assert read_concurrently(check, list(range(8))) == []
    assert len(gets(vault_log(az), "secrets", "db-password")) == 1
    for _ in range(3):
        assert read(p) == want
    assert len(gets(vault_log(az), "secrets", "db-password")) == 1


def test_secret_rotation_seen_after_revalidation(mount, az):
    name = "collections-rotating-secret"
    az.create_secret(name, value="first\n")
    try:
        m = mount(collections=ALL)
        p = m.p("secrets", name)
        with open(p, "rb") as held:
            az.rotate(name, kind="secrets", value="second")
            m.proc.send_signal(signal.SIGHUP)
            wait_until(lambda: subprocess.run(
                ["cat", p], capture_output=True, check=True).stdout == b"second",
                15, "the rotated secret")
            # an open file keeps the bytes it was opened with
            assert held.read() == b"first\n"
        assert len(os.listdir(m.p("secrets", ".versions", name))) == 2
    finally:
        az.delete(name, kind="secrets")


def test_every_xattr_is_documented(all_mount):
    from test_man import rendered
    page = rendered()
    for p in (all_mount.p("secrets", "app-config"), all_mount.p("keys", "ec-p384-key")):
        for name in os.listxattr(p):
            assert re.search(r"^\s+(\S+, )?%s\b" % re.escape(name), page, re.M), \
                "%s is not an entry of kvfs(8)" % name
