"""The secrets and keys collections beside certificates (collections=):
secrets/<name> is exactly the latest value and secrets/.versions/<name>/
every version; keys/<name>/ holds the public half (public.pem,
public.jwk) of every version.  Each listing costs its pages, each object
one GET on first use, shared by concurrent readers, and a stat none;
attributes close, time and describe every object as they do
certificates, and the xattrs the listing carries cost no request.  Each
listing equals the vault's across pages, and the filters apply to every
collection."""

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
import util
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
            # every xattr listed has a value: crv only for an EC key
            got = {x: os.getxattr(p, x).decode() for x in os.listxattr(p)}
            assert ("user.kvfs.crv" in got) == ("crv" in v["jwk"]), (name, got)
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
    assert sorted(os.listdir(shared_mount.path)) == [".kvfs", "certificates",
                                                     "expiring"]
    for c in ("secrets", "keys"):
        with pytest.raises(FileNotFoundError):
            os.stat(shared_mount.p(c))


def test_all_collections_in_table_order(all_mount):
    assert sorted(os.listdir(all_mount.path)) == [".kvfs", "certificates", "expiring",
                                                  "keys", "secrets"]
    assert os.stat(all_mount.path).st_nlink == 2 + 3 + 1 + 1


@pytest.mark.parametrize(
    "coll", ["certificates", "secrets", "keys", "secrets/.versions"])
def test_collection_read_an_entry_a_reply(all_mount, coll):
    """A collection's directory, or secrets/.versions/, read in replies of
    one or two entries (a 80-byte getdents64) lists every name once,
    .versions/ of secrets included: what one listdir gives."""
    whole = os.listdir(all_mount.p(coll))
    fd = os.open(all_mount.p(coll), os.O_RDONLY | os.O_DIRECTORY)
    try:
        names, calls = [], 0
        # Bounded: an offset that does not move on would list forever.
        while calls <= 2 * len(whole) + 2:
            got = util.getdents(fd, 80)
            calls += 1
            if not got:
                break
            names += got
    finally:
        os.close(fd)
    assert calls > len(whole) // 2
    assert len(names) == len(set(names))
    assert sorted(names) == sorted(whole)
    assert (".versions" in names) == (coll == "secrets")


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


SECRET_XATTRS = {"user.kvfs." + x for x in (
    "enabled", "nbf", "exp", "created", "updated", "tags")}


def check_secret_xattrs(p, v):
    """p's xattrs are v's: each listed one has a value, content_type only
    when the vault keeps one; the id and version once the value was read."""
    names = set(os.listxattr(p))
    got = {x: os.getxattr(p, x).decode() for x in names}
    want = set(SECRET_XATTRS)
    if v["content_type"]:
        want.add("user.kvfs.content_type")
        assert got["user.kvfs.content_type"] == v["content_type"]
    else:
        with pytest.raises(OSError) as e:
            os.getxattr(p, "user.kvfs.content_type")
        assert e.value.errno == errno.ENODATA
    assert got["user.kvfs.enabled"] == ("true" if v["enabled"] else "false")
    assert got["user.kvfs.nbf"] == str(v["nbf"] or 0)
    assert got["user.kvfs.exp"] == str(v["exp"] or 0)
    assert got["user.kvfs.created"] == str(v["created"])
    assert got["user.kvfs.updated"] == str(v["updated"])
    assert json.loads(got["user.kvfs.tags"]) == (v["tags"] or {})
    return names - want, got


def test_secret_xattrs_cost_no_request(mount, az):
    m = mount(collections=ALL)
    az.reset_log()
    for name in ("app-config", "tagged-secret", "db-password",
                 "disabled-secret", "expired-secret", "future-secret"):
        v = latest(az.secret(name))
        p = m.p("secrets", name)
        extra, _ = check_secret_xattrs(p, v)
        # the latest version is known once the value is: not before
        assert extra == set(), (name, extra)
        for x in ("user.kvfs.id", "user.kvfs.version"):
            with pytest.raises(OSError) as e:
                os.getxattr(p, x)
            assert e.value.errno == errno.ENODATA
    # a disabled secret shows its metadata although its GET is refused
    assert os.getxattr(m.p("secrets", "disabled-secret"),
                       "user.kvfs.enabled") == b"false"
    assert [e for e in vault_log(az) if e["path"].startswith("/secrets")] == []


def test_secret_xattrs_after_read(mount, az):
    m = mount(collections=ALL)
    for name in ("app-config", "tagged-secret", "db-password"):
        v = latest(az.secret(name))
        p = m.p("secrets", name)
        assert read(p) == v["value"].encode()
        az.reset_log()
        extra, got = check_secret_xattrs(p, v)
        assert extra == {"user.kvfs.id", "user.kvfs.version"}, name
        assert got["user.kvfs.id"] == "%s/secrets/%s/%s" % (
            az.info["vault_url"], name, v["version"])
        assert got["user.kvfs.version"] == v["version"]
        assert gets(vault_log(az), "secrets", name) == []
    assert os.getxattr(m.p("secrets", "app-config"),
                       "user.kvfs.content_type") == b"application/json"


def test_secret_version_xattrs_from_its_listing(mount, az):
    m = mount(collections=ALL)
    s = az.secret("rotated-secret")
    az.reset_log()
    for v in s["versions"]:
        p = m.p("secrets", ".versions", "rotated-secret", v["version"])
        extra, got = check_secret_xattrs(p, v)
        assert extra == {"user.kvfs.id", "user.kvfs.version"}
        assert got["user.kvfs.id"] == "%s/secrets/rotated-secret/%s" % (
            az.info["vault_url"], v["version"])
        assert got["user.kvfs.version"] == v["version"]
    # the versions listing only, never a value
    assert gets(vault_log(az), "secrets", "rotated-secret") == []
    assert [e["path"].rstrip("/") for e in vault_log(az)] == \
        ["/secrets/rotated-secret/versions"]


def test_certificate_xattrs_of_the_listing_cost_no_request(mount, az):
    m = mount()
    az.reset_log()
    c = az.certificate("www")
    v = latest(c)
    d = m.p("certificates", "www")
    assert os.getxattr(d, "user.kvfs.x5t").decode() == v["x5t"]
    assert os.getxattr(d, "user.kvfs.updated").decode() == str(v["updated"])
    assert json.loads(os.getxattr(d, "user.kvfs.tags")) == c["tags"]
    assert "user.kvfs.subject" in os.listxattr(d)
    assert vault_log(az) == []
    # what only the bundle has costs its GET, once
    assert os.getxattr(d, "user.kvfs.version").decode() == v["version"]
    os.getxattr(d, "user.kvfs.sha256")
    assert [e["path"].rstrip("/") for e in vault_log(az)] == \
        ["/certificates/www"]


def test_key_xattrs_list_crv_only_for_ec(all_mount, fake):
    for name in ("rsa-key", "hsm-rsa-key", "ec-p256-key", "hsm-ec-key",
                 "disabled-key"):
        v = latest(fake.key(name))
        p = all_mount.p("keys", name)
        names = set(os.listxattr(p))
        ec = v["jwk"]["kty"].startswith("EC")
        assert ("user.kvfs.crv" in names) == ec, name
        if ec:
            assert os.getxattr(p, "user.kvfs.crv").decode() == v["jwk"]["crv"]
        else:
            with pytest.raises(OSError) as e:
                os.getxattr(p, "user.kvfs.crv")
            assert e.value.errno == errno.ENODATA
        for x in names:
            assert os.getxattr(p, x), (name, x)
        assert os.getxattr(p, "user.kvfs.enabled") == \
            (b"true" if v["enabled"] else b"false")


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


# ---- sizes, costs and listings across pages ----

# A secret value's maximum, "25 KB" (AZURE.md), as the fake counts it.
SECRET_MAX = 25 * 1024


def test_secret_size_before_and_after_its_first_open(mount, az):
    values = {"collections-newline-secret": "two\nlines\n",
              "collections-max-secret": ("0123456789abcdef" * 1600)[:SECRET_MAX - 1] + "\n"}
    assert len(values["collections-max-secret"]) == SECRET_MAX
    for name, value in values.items():
        az.create_secret(name, value=value)
    try:
        m = mount(collections=ALL)
        az.reset_log()
        for name, value in values.items():
            p = m.p("secrets", name)
            # the size is not known without the value, and a stat never
            # fetches it: 0, as /proc's
            assert os.stat(p).st_size == 0
            assert gets(vault_log(az), "secrets", name) == []
            # a program that reads to the end gets every byte, the
            # trailing newline included, although the kernel was told 0
            assert read(p) == value.encode()
            with open(p, "rb") as f:
                assert f.read(7) == value.encode()[:7]
                assert f.read() == value.encode()[7:]
            assert subprocess.run(["cat", p], capture_output=True,
                                  check=True).stdout == value.encode()
            # once fetched, a stat that reaches kvfs says the size (the
            # kernel keeps what it was told of p's spelling a while)
            assert os.stat(m.p("secrets", name.upper())).st_size == len(value)
            assert len(gets(vault_log(az), "secrets", name)) == 1
    finally:
        for name in values:
            az.delete(name, kind="secrets")


def test_ls_l_costs_list_requests_only(mount, az):
    m = mount(collections=ALL)
    az.reset_log()
    for d in ("secrets", "keys", os.path.join("secrets", ".versions")):
        r = subprocess.run(["ls", "-la", m.p(d)], capture_output=True,
                           text=True, check=True)
        assert "db-password" in r.stdout or "rsa-key" in r.stdout, r.stdout
    # the listings were there: not a request, not a GET
    assert [e for e in vault_log(az)
            if e["path"].startswith(("/secrets", "/keys"))] == []


def test_listings_equal_the_vault_across_pages(mount, az):
    names = {"secrets": ["pages-secret-%02d" % i for i in range(60)],
             "keys": ["pages-key-%02d" % i for i in range(60)]}
    for n in names["secrets"]:
        az.create_secret(n, value=n)
    for n in names["keys"]:
        az.create_key(n, kty="EC", crv="P-256")
    try:
        state = az.state()
        az.reset_log()
        m = mount(collections=ALL)
        for kind in ("secrets", "keys"):
            listed = set(os.listdir(m.p(kind))) - {".versions"}
            # the vault's own, every page of them; not those behind a
            # certificate
            assert listed == {o["name"] for o in state[kind]}, kind
            assert set(names[kind]) <= listed
            n = len(state[kind]) + len(state["certificates"])
            assert n > 3 * 25
            assert len(list_pages(vault_log(az), kind)) == math.ceil(n / 25)
        assert set(os.listdir(m.p("secrets", ".versions"))) == \
            {o["name"] for o in state["secrets"]}
        assert set(os.listdir(m.p("certificates"))) == \
            {c["name"] for c in state["certificates"]}
    finally:
        for kind, ns in names.items():
            for n in ns:
                az.delete(n, kind=kind)


def globbed(names, include, exclude):
    import fnmatch
    low = lambda n: n.lower()  # noqa: E731
    return {n for n in names
            if any(fnmatch.fnmatchcase(low(n), g.lower()) for g in include)
            and not any(fnmatch.fnmatchcase(low(n), g.lower()) for g in exclude)}


def test_filters_combined_across_collections(mount, az):
    state = az.state()
    include, exclude = ["*-KEY", "db-*", "www", "*secret"], ["hsm-*", "ec-*", "rotated-*"]
    m = mount(collections=ALL,
              include=",".join("include=" + g for g in include)[len("include="):],
              exclude=",".join("exclude=" + g for g in exclude)[len("exclude="):])
    want = {kind: globbed([o["name"] for o in state[kind]], include, exclude)
            for kind in ("certificates", "secrets", "keys")}
    assert want["keys"] == {"rsa-key", "disabled-key"}
    assert "www" in want["certificates"] and "db-password" in want["secrets"]
    for kind in ("certificates", "secrets", "keys"):
        assert set(os.listdir(m.p(kind))) - {".versions"} == want[kind], kind
    # tag= on top: all must let an object through, in every collection
    m = mount(collections=ALL, include="*secret,include=www,include=*-key",
              exclude="rotated-*", tag="env=prod")
    assert sorted(os.listdir(m.p("certificates"))) == ["www"]
    assert sorted(os.listdir(m.p("secrets"))) == [".versions", "tagged-secret"]
    assert os.listdir(m.p("keys")) == []
    az.reset_log()
    # filtered out: ENOENT, and nothing asked of the vault
    for p in (("secrets", "db-password"), ("secrets", ".versions", "db-password"),
              ("keys", "rsa-key"), ("keys", "rsa-key", "public.pem"),
              ("certificates", "mail")):
        with pytest.raises(FileNotFoundError):
            os.stat(m.p(*p))
    assert vault_log(az) == []
    assert read(m.p("secrets", "tagged-secret")) == b"tagged"


def test_startup_line_counts_what_is_mounted(mount, az):
    m = mount(collections=ALL, loglevel="info")
    state = az.state()
    line = next(l for l in m.stderr().splitlines() if "mounted '" in l)
    for kind in ("secrets", "keys"):
        n = len(os.listdir(m.p(kind))) - (kind == "secrets")
        assert " %d %s" % (n, kind) in line, line
    assert "%d certificates" % len(state["certificates"]) in line, line


def test_refused_listing_names_its_collection(az, tmp_path):
    from conftest import option_string, run_kvfs, secret_options
    # the reader may list certificates, not secrets
    opts = secret_options(az, "reader")
    opts["collections"] = "certificates+secrets"
    r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"],
                  str(tmp_path)])
    assert r.returncode == 1
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("kvfs: cannot list secrets of "), r.stderr
    assert "ForbiddenByRbac" in line
