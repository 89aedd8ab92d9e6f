"""The files made from a certificate's secret: privkey.pem,
chain.pem, fullchain.pem, bundle.pem and cert.pfx for every seeded
certificate, checked with openssl against the fake's root CA; EC keys; a
key that is not exportable; an identity that may not read secrets; the
secret fetched only when one of its files is looked at, once."""

import base64
import errno
import json
import os
import pwd
import stat
import subprocess
import tempfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import util
from conftest import start_mount
from util import vault_requests

SECRET_FILES = ("chain.pem", "fullchain.pem", "privkey.pem", "bundle.pem",
                "cert.pfx")
KEY_FILES = ("privkey.pem", "bundle.pem", "cert.pfx")
CLOSED = ("disabled-cert", "expired-cert", "future-cert")


def state_by_name(fake):
    return {c["name"]: c for c in fake.state()["certificates"]}


def latest(cert):
    return next(v for v in cert["versions"] if v["version"] == cert["latest"])


def openable(fake):
    """Every seeded certificate that can be opened (one bulk one)."""
    return [n for n in state_by_name(fake)
            if n not in CLOSED and (not n.startswith("bulk-") or n == "bulk-000")]


def openssl(*args, input=None):
    return subprocess.run(["openssl"] + list(args), input=input,
                          capture_output=True, check=False)


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


def pem_certs(data):
    end = b"-----END CERTIFICATE-----\n"
    blocks = [b + end for b in data.split(end) if b.strip()]
    return [x509.load_pem_x509_certificate(b) for b in blocks]


def public_of_key(path):
    r = openssl("pkey", "-in", path, "-pubout")
    assert r.returncode == 0, r.stderr
    return r.stdout


def public_of_cert(path):
    r = openssl("x509", "-in", path, "-noout", "-pubkey")
    assert r.returncode == 0, r.stderr
    return r.stdout


def secret_gets(fake):
    return [e for e in fake.log() if e["server"] == "vault"
            and e["path"].startswith("/secrets/")]


def test_every_certificate_key_chain_and_pfx(shared_mount, fake):
    root = fake.info["root_ca"]
    root_cert = x509.load_pem_x509_certificate(read(root))
    state = state_by_name(fake)
    names = openable(fake)
    assert {"www", "api", "mail", "reversed-chain", "selfsigned",
            "hsm-key", "WebFrontend"} <= set(names)
    for name in names:
        d = shared_mount.p("certificates", name)
        cert_pem = read(os.path.join(d, "cert.pem"))
        chain = read(os.path.join(d, "chain.pem"))
        full = read(os.path.join(d, "fullchain.pem"))
        leaf = x509.load_pem_x509_certificate(cert_pem)
        assert leaf.public_bytes(serialization.Encoding.DER) == \
            base64.b64decode(latest(state[name])["cer"]), name

        # fullchain = leaf + chain, ordered leaf -> root, root left out
        assert full == cert_pem + chain, name
        certs = pem_certs(full)
        for child, parent in zip(certs, certs[1:]):
            assert child.issuer == parent.subject, name
            assert parent.subject != parent.issuer, name  # no root
        if name == "selfsigned":
            assert chain == b"", name
            r = openssl("verify", "-CAfile", os.path.join(d, "cert.pem"),
                        os.path.join(d, "cert.pem"))
        else:
            assert certs[-1].issuer == root_cert.subject, name
            r = openssl("verify", "-CAfile", root, "-untrusted",
                        os.path.join(d, "chain.pem"),
                        os.path.join(d, "cert.pem"))
        assert r.returncode == 0, (name, r.stdout, r.stderr)

        if name == "hsm-key":
            continue
        # the key matches the certificate of the same directory
        key_path = os.path.join(d, "privkey.pem")
        key_pem = read(key_path)
        assert key_pem.startswith(b"-----BEGIN PRIVATE KEY-----\n"), name
        assert public_of_key(key_path) == public_of_cert(
            os.path.join(d, "cert.pem")), name
        assert read(os.path.join(d, "bundle.pem")) == key_pem + full, name

        # PKCS#12 with an empty password: key + leaf + issuers
        r = openssl("pkcs12", "-in", os.path.join(d, "cert.pfx"),
                    "-passin", "pass:", "-nodes")
        assert r.returncode == 0, (name, r.stderr)
        assert r.stdout.count(b"BEGIN CERTIFICATE") == len(certs), name
        out_key = openssl("pkey", "-pubout", input=r.stdout)
        assert out_key.stdout == public_of_key(key_path), name


def test_chain_order_of_reversed_chain(shared_mount, fake):
    d = shared_mount.p("certificates", "reversed-chain")
    inter = x509.load_pem_x509_certificate(read(fake.info["intermediate_ca"]))
    chain = pem_certs(read(os.path.join(d, "chain.pem")))
    assert chain == [inter]
    full = pem_certs(read(os.path.join(d, "fullchain.pem")))
    assert full[1:] == [inter]
    assert full[0].issuer == inter.subject


def test_ec_keys(shared_mount, fake):
    state = state_by_name(fake)
    seen = set()
    for name in ("api", "mail", "bulk-000"):
        key = serialization.load_pem_private_key(
            read(shared_mount.p("certificates", name, "privkey.pem")), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey), name
        curve = {"secp256r1": "P-256", "secp384r1": "P-384"}[key.curve.name]
        assert curve == state[name]["crv"], name
        seen.add(curve)
    assert seen == {"P-256", "P-384"}
    key = serialization.load_pem_private_key(
        read(shared_mount.p("certificates", "www", "privkey.pem")), None)
    assert isinstance(key, rsa.RSAPrivateKey)


def test_modes(shared_mount, fake):
    for name in ("www", "api"):
        d = shared_mount.p("certificates", name)
        for fn in ("cert.pem", "cert.der", "chain.pem", "fullchain.pem"):
            assert stat.S_IMODE(os.stat(os.path.join(d, fn)).st_mode) == 0o444
        for fn in KEY_FILES:
            st = os.stat(os.path.join(d, fn))
            assert stat.S_IMODE(st.st_mode) == 0o400, (name, fn)
            assert st.st_size == len(read(os.path.join(d, fn))), (name, fn)
    for name in CLOSED:
        d = shared_mount.p("certificates", name)
        for fn in SECRET_FILES:
            assert stat.S_IMODE(os.stat(os.path.join(d, fn)).st_mode) == 0
            with pytest.raises(PermissionError):
                open(os.path.join(d, fn), "rb")


def test_key_mode_option(mount, az):
    m = mount(key_mode="0440")
    d = m.p("certificates", "www")
    assert stat.S_IMODE(os.stat(os.path.join(d, "privkey.pem")).st_mode) == 0o440
    assert stat.S_IMODE(os.stat(os.path.join(d, "cert.pfx")).st_mode) == 0o440
    assert stat.S_IMODE(os.stat(os.path.join(d, "chain.pem")).st_mode) == 0o444


def test_non_exportable_key_has_no_key_files(shared_mount, fake):
    assert state_by_name(fake)["hsm-key"]["exportable"] is False
    d = shared_mount.p("certificates", "hsm-key")
    names = set(os.listdir(d))
    assert {"cert.pem", "cert.der", "chain.pem", "fullchain.pem"} <= names
    assert not names & set(KEY_FILES)
    for fn in KEY_FILES:
        with pytest.raises(FileNotFoundError):
            os.stat(os.path.join(d, fn))
        with pytest.raises(FileNotFoundError):
            open(os.path.join(d, fn), "rb")
    assert len(pem_certs(read(os.path.join(d, "fullchain.pem")))) == 2


def test_forbidden_secret_closes_only_secret_files(mount, az):
    m = mount(app="reader")
    state = state_by_name(az)
    d = m.p("certificates", "www")
    for fn in SECRET_FILES:
        st = os.stat(os.path.join(d, fn))
        assert stat.S_IMODE(st.st_mode) == 0, fn
        with pytest.raises(PermissionError) as e:
            open(os.path.join(d, fn), "rb")
        assert e.value.errno == errno.EACCES
    assert read(os.path.join(d, "cert.der")) == \
        base64.b64decode(latest(state["www"])["cer"])
    assert stat.S_IMODE(os.stat(os.path.join(d, "cert.pem")).st_mode) == 0o444
    # the refusal is remembered: no GET per look
    az.reset_log()
    for _ in range(3):
        with pytest.raises(PermissionError):
            open(os.path.join(d, "privkey.pem"), "rb")
    assert secret_gets(az) == []


def test_cert_pem_costs_no_secret_and_privkey_one(mount, az):
    m = mount()
    state = state_by_name(az)
    az.reset_log()
    d = m.p("certificates", "www")
    read(os.path.join(d, "cert.pem"))
    read(os.path.join(d, "cert.der"))
    os.stat(os.path.join(d, "cert.pem"))
    assert secret_gets(az) == []
    assert len(vault_requests(az)) == 1  # the bundle
    az.reset_log()
    read(os.path.join(d, "privkey.pem"))
    gets = secret_gets(az)
    assert len(gets) == 1
    assert gets[0]["path"].rstrip("/") == "/secrets/www/" + state["www"]["latest"]
    assert len(vault_requests(az)) == 1
    az.reset_log()
    for fn in SECRET_FILES:
        read(os.path.join(d, fn))
        os.stat(os.path.join(d, fn))
    assert vault_requests(az) == []


STAT_USER = "kvfs-test-stat"


@pytest.fixture
def unprivileged_user():
    """(uid, gid) of a user made for the test, neither root nor the
    mount's owner."""
    try:
        pw = pwd.getpwnam(STAT_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home",
                        "--shell", "/usr/sbin/nologin", STAT_USER], check=True)
        pw = pwd.getpwnam(STAT_USER)
    yield pw.pw_uid, pw.pw_gid
    subprocess.run(["userdel", STAT_USER], check=False)


# As another user: each path's st_size, then whether open() works.
STAT_AS = r"""
import json, os, sys
out = {}
for p in sys.argv[1:]:
    try:
        size = os.stat(p).st_size
    except OSError as e:
        out[p] = ["stat", e.errno]
        continue
    try:
        open(p, "rb").close()
        out[p] = [size, 0]
    except OSError as e:
        out[p] = [size, e.errno]
print(json.dumps(out))
"""


def test_stat_of_a_key_file_by_a_user_who_may_not_open_it_fetches_no_secret(
        az, unprivileged_user, tmp_path):
    uid, gid = unprivileged_user
    d = tempfile.mkdtemp(prefix="kvfs-test-stat-")
    os.chmod(d, 0o755)
    m = start_mount(az, d, str(tmp_path / "kvfs.stderr"),
                    allow_other=True).wait_mounted()
    try:
        names = ["www", "api", "mail"]
        paths = [m.p("certificates", n, f) for n in names for f in KEY_FILES]
        az.reset_log()
        r = subprocess.run(["/usr/bin/python3", "-c", STAT_AS] + paths,
                           user=uid, group=gid, extra_groups=[], cwd="/",
                           env={"PATH": "/usr/bin:/bin"},
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        seen = json.loads(r.stdout)
        # the size is not known without the secret: 0; and the user may
        # not open the file anyway
        assert all(v == [0, errno.EACCES] for v in seen.values()), seen
        assert secret_gets(az) == []
        # root reads every byte, although the kernel was told size 0
        for n in names:
            dd = m.p("certificates", n)
            key, full = read(os.path.join(dd, "privkey.pem")), \
                read(os.path.join(dd, "fullchain.pem"))
            assert key.startswith(b"-----BEGIN PRIVATE KEY-----\n")
            assert key.endswith(b"-----END PRIVATE KEY-----\n")
            assert public_of_key(os.path.join(dd, "privkey.pem")) == \
                public_of_cert(os.path.join(dd, "cert.pem"))
            assert full.startswith(read(os.path.join(dd, "cert.pem")))
            assert read(os.path.join(dd, "bundle.pem")) == key + full
            pfx = read(os.path.join(dd, "cert.pfx"))
            r = openssl("pkcs12", "-in", os.path.join(dd, "cert.pfx"),
                        "-passin", "pass:", "-nokeys", "-clcerts")
            assert r.returncode == 0 and len(pfx) > 500, r.stderr
            # a program that reads exactly what fstat says gets nothing
            # wrong either: the size it sees is not smaller than the file
            with open(os.path.join(dd, "privkey.pem"), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                assert size in (0, len(key))
                assert f.read() == key
            # and again, from another process (the page cache path)
            out = subprocess.run(["cat", os.path.join(dd, "bundle.pem")],
                                 capture_output=True, check=True).stdout
            assert out == key + full
        assert len(secret_gets(az)) == len(names)
    finally:
        m.unmount()
        os.rmdir(d)


def test_concurrent_first_key_readers_share_one_secret_get(mount, az):
    m = mount()
    p = m.p("certificates", "api", "privkey.pem")
    read(m.p("certificates", "api", "cert.pem"))
    az.reset_log()
    az.fault(kind="delay", delay=1.0, count=1, path="^/secrets/api")
    results = []
    errors = util.read_concurrently(lambda _: results.append(read(p)), range(6))
    assert errors == []
    assert len(results) == 6 and len(set(results)) == 1
    assert len(secret_gets(az)) == 1


def test_bad_secret_fails_that_certificate_only(mount, az):
    """A secret whose value cannot be parsed (the JSON around it is fine, so
    nothing is retried) fails that certificate's key files only."""
    m = mount()
    az.settings(malformed_secret={"mail": True})
    try:
        d = m.p("certificates", "mail")
        with pytest.raises(OSError) as e:
            read(os.path.join(d, "privkey.pem"))
        assert e.value.errno == errno.EIO
        assert read(os.path.join(d, "cert.pem")).startswith(b"-----BEGIN CERT")
        assert read(m.p("certificates", "www", "privkey.pem")).startswith(b"-----")
        # the verdict is kept until the next refresh: no request per look
        az.reset_log()
        with pytest.raises(OSError) as e:
            read(os.path.join(d, "privkey.pem"))
        assert e.value.errno == errno.EIO
        assert secret_gets(az) == []
    finally:
        az.settings(malformed_secret={})


def kdf_iterations(m):
    with open(m.p(".kvfs", "metrics")) as f:
        for line in f:
            if line.startswith("kvfs_pkcs12_kdf_iterations_total "):
                return int(line.split()[1])
    raise AssertionError("no kvfs_pkcs12_kdf_iterations_total in .kvfs/metrics")


def test_pkcs12_work_bomb_is_refused_before_any_derivation(mount, az):
    """PKCS#12 secrets that ask for 100 key derivations of 200,000
    iterations each (no MAC, the key in a plain bag) are refused before
    any key is derived: eight of them read at once give EIO, the log says
    why, and a stat and a key read of another PKCS#12 certificate among
    them are answered; the only derivations run are that one's three."""
    names = ["bomb-%d" % i for i in range(8)]
    for n in names:
        az.create(n, kty="EC", crv="P-256", content_type="pkcs12")
    az.settings(pkcs12_bomb={n: 100 for n in names})
    try:
        m = mount()
        before = kdf_iterations(m)

        def work(name):
            if name != "api":
                with pytest.raises(OSError) as e:
                    read(m.p("certificates", name, "privkey.pem"))
                assert e.value.errno == errno.EIO
                return
            os.stat(m.p("certificates", "api", "cert.pem"))
            assert read(m.p("certificates", "api", "privkey.pem")).startswith(b"-----")

        assert util.read_concurrently(work, names + ["api"], timeout=20.0) == []
        # Key Vault's PKCS#12 of api: the MAC, the certificates, the key
        assert kdf_iterations(m) - before == 3 * 2000
        assert m.stderr().count("asks for too many key derivations") == len(names)
    finally:
        az.settings(pkcs12_bomb={})
        for n in names:
            az.delete(n)


def test_rotation_between_bundle_and_secret_keeps_one_version(mount, az):
    """The directory's files come from the bundle's version: a rotation in
    the vault after cert.pem was read does not give a key of the new
    version."""
    name = "rot-secrets"
    az.create(name, kty="RSA", content_type="pem")
    try:
        m = mount()
        d = m.p("certificates", name)
        before = az.certificate(name)["latest"]
        cert_path = os.path.join(d, "cert.pem")
        read(cert_path)
        az.rotate(name)
        assert az.certificate(name)["latest"] != before
        az.reset_log()
        key_path = os.path.join(d, "privkey.pem")
        assert public_of_key(key_path) == public_of_cert(cert_path)
        assert [g["path"].rstrip("/") for g in secret_gets(az)] == \
            ["/secrets/%s/%s" % (name, before)]
        assert pem_certs(read(os.path.join(d, "fullchain.pem")))[0] == \
            x509.load_pem_x509_certificate(read(cert_path))
    finally:
        az.delete(name)


def test_disabled_secret_is_not_an_auth_failure(mount, az):
    """A version disabled after the listing: the vault refuses its secret
    with SecretDisabled, which closes the secret-derived files like a 403
    but is not reported as a permission problem."""
    name = "disabled-later"
    az.create(name, kty="EC", crv="P-256", content_type="pem")
    try:
        m = mount()
        d = m.p("certificates", name)
        read(os.path.join(d, "cert.pem"))
        az.disable(name)
        with pytest.raises(PermissionError):
            read(os.path.join(d, "privkey.pem"))
        assert stat.S_IMODE(os.stat(os.path.join(d, "privkey.pem")).st_mode) == 0
        assert any(e["status"] == 403 for e in secret_gets(az))
        err = m.stderr()
        assert "cannot get the secret" not in err, err
        assert "ForbiddenByRbac" not in err, err
    finally:
        az.delete(name)
