"""What the fake serves at start: the TLS material of its HTTPS servers, the
PKI (root -> intermediate -> leaves) behind the seeded certificates, the
client credentials of the registered apps, and the seeded vault content
(certificates, secrets, keys).

Also the Factory that later control calls (rotate, create) use, so that new
versions come out of the same CA with the same rules.
"""

import hashlib
import json
import os
import time
import uuid

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12 as crypto_pkcs12

import pki
import jwtutil
from state import (PEM_TYPE, PFX_TYPE, Certificate, Key, KeyVersion, Secret, SecretVersion,
                   Version)

DAY = 86400
EKU_OIDS = ["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]
ROOT_CN = "kvfs Test Root CA"
INTERMEDIATE_CN = "kvfs Test Intermediate CA"
FEDERATED_ISSUER = "https://oidc.kvfs.test/fake-cluster"
FEDERATED_SUBJECT = "system:serviceaccount:kvfs:kvfs"
FEDERATED_AUDIENCE = "api://AzureADTokenExchange"
# A secret value's documented maximum, "25 KB" (about-secrets.md), as bytes
SECRET_MAX_BYTES = 25 * 1024
# The value sizes of --bulk-secrets, in characters: passwords, API keys
BULK_SECRET_MIN = 32
BULK_SECRET_MAX = 64


def entra_secret():
    """A client secret in Entra's shape: 3 chars, '8Q~', 34 chars."""
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789~._-"
    raw = os.urandom(37)
    chars = "".join(alphabet[b % len(alphabet)] for b in raw)
    return chars[:3] + "8Q~" + chars[3:]


def guid():
    return str(uuid.uuid4())


class Factory:
    """Issues certificate versions from the seeded intermediate CA."""

    def __init__(self, state, pool, now):
        self.state = state
        self.pool = pool
        self.now = now
        self.root_key = pool.rsa()
        self.root = pki.make_ca(ROOT_CN, self.root_key, now - 400 * DAY, now + 3650 * DAY)
        self.int_key = pool.rsa()
        self.intermediate = pki.make_ca(INTERMEDIATE_CN, self.int_key, now - 399 * DAY,
                                        now + 1825 * DAY, self.root, self.root_key, path_len=0)
        self.shared_ec = pki.new_ec_key("P-256")

    def new_key(self, cert):
        if cert.kty.startswith("EC"):
            return pki.new_ec_key(cert.crv or "P-256")
        return self.pool.rsa(cert.key_size or 2048)

    def issue(self, cert, created, nbf=None, exp=None, key=None, updated=None,
              enabled=True, self_signed=None, chain_reversed=False):
        """Make a Version of cert; nbf/exp default to created-10min .. +1 year."""
        if key is None:
            key = self.new_key(cert)
        if nbf is None:
            nbf = created - 600
        if exp is None:
            exp = nbf + 365 * DAY
        if self_signed is None:
            self_signed = cert.issuer_name == "Self"
        cn = cert.subject.split(",")[0].split("=", 1)[1] if cert.subject else cert.name
        if self_signed:
            leaf = pki.make_leaf(cn, key, nbf, exp, dns_names=cert.dns_names)
            chain = []
        else:
            leaf = pki.make_leaf(cn, key, nbf, exp, self.intermediate, self.int_key,
                                 dns_names=cert.dns_names)
            chain = [self.intermediate]
            if chain_reversed:
                chain = [self.intermediate, self.root]
        return Version(leaf, key, chain, created, updated=updated, enabled=enabled,
                       chain_reversed=chain_reversed)

    def new_certificate(self, name, kty="RSA", key_size=None, crv=None, content_type=PEM_TYPE,
                        exportable=True, tags=None, dns_names=None, issuer="Unknown",
                        created=None):
        kty_base = kty.replace("-HSM", "")
        if kty_base == "EC":
            crv = crv or "P-256"
            key_size = None
        else:
            key_size = key_size or 2048
            crv = None
        cn = "%s.kvfs.test" % name.lower()
        if dns_names is None:
            dns_names = [cn]
        return Certificate(name, kty=kty, key_size=key_size, crv=crv, content_type=content_type,
                           exportable=exportable and not kty.endswith("-HSM"), tags=tags,
                           subject="CN=%s, O=kvfs test" % cn, dns_names=dns_names, issuer_name=issuer,
                           ekus=EKU_OIDS,
                           key_usage=(["digitalSignature"] if kty_base == "EC"
                                      else ["digitalSignature", "keyEncipherment"]),
                           policy_created=created)

    def rotate(self, cert):
        """A new latest version with a new key; returns it."""
        key = None
        if cert.kty.startswith("EC"):
            key = pki.new_ec_key(cert.crv or "P-256")
        ts = self.state.next_timestamp()
        ver = self.issue(cert, ts, key=key, chain_reversed=cert.latest.chain_reversed
                         if cert.versions else False)
        self.state.add_version(cert, ver)
        return ver

    def create_from_spec(self, spec):
        """Control API: POST /certificates {"name", "kty", ...}."""
        name = spec["name"]
        ct = spec.get("content_type", "pem")
        ct = {"pem": PEM_TYPE, "pkcs12": PFX_TYPE, "pfx": PFX_TYPE}.get(ct, ct)
        created = self.state.next_timestamp()
        cert = self.new_certificate(
            name, kty=spec.get("kty", "RSA"), key_size=spec.get("key_size"), crv=spec.get("crv"),
            content_type=ct, exportable=spec.get("exportable", True), tags=spec.get("tags"),
            dns_names=spec.get("dns_names"),
            issuer="Self" if spec.get("self_signed") else "Unknown", created=created)
        ver = self.issue(cert, created, nbf=spec.get("nbf"), exp=spec.get("exp"),
                         enabled=spec.get("enabled", True),
                         chain_reversed=bool(spec.get("chain_reversed")))
        cert.versions.append(ver)
        self.state.add_certificate(cert)
        return cert


    # --- secrets and keys -----------------------------------------------------

    def secret_version(self, spec, created=None):
        """A SecretVersion from a control spec {"value", "content_type",
        "tags", "enabled", "nbf", "exp"}; the value defaults to a fresh one."""
        created = created if created is not None else self.state.next_timestamp()
        value = spec.get("value")
        if value is None:
            value = "value-" + pki.random_hex(12)
        return SecretVersion(value, created, content_type=spec.get("content_type"),
                             tags=spec.get("tags"), enabled=spec.get("enabled", True),
                             nbf=spec.get("nbf"), exp=spec.get("exp"))

    def key_version(self, spec, created=None, key=None):
        """A KeyVersion from a control spec {"kty": "RSA"|"RSA-HSM"|"EC"|"EC-HSM",
        "key_size": 2048|3072|4096, "crv": "P-256"|"P-384"|"P-521", "key_ops",
        "tags", "enabled", "nbf", "exp", "exportable"}."""
        kty = spec.get("kty", "RSA")
        if kty not in ("RSA", "RSA-HSM", "EC", "EC-HSM"):
            raise ValueError("unknown kty %r" % kty)
        if key is None:
            if kty.startswith("EC"):
                key = pki.new_ec_key(spec.get("crv") or "P-256")
            else:
                size = int(spec.get("key_size") or 2048)
                if size not in (2048, 3072, 4096):
                    raise ValueError("RSA key_size must be 2048, 3072 or 4096")
                key = self.pool.rsa(size)
        created = created if created is not None else self.state.next_timestamp()
        return KeyVersion(key, kty, created, key_ops=spec.get("key_ops"), tags=spec.get("tags"),
                          enabled=spec.get("enabled", True), nbf=spec.get("nbf"),
                          exp=spec.get("exp"), exportable=bool(spec.get("exportable", False)))

    def create_object(self, kind, spec):
        """Control API: POST /secrets or /keys -> the new Secret or Key."""
        obj = (Secret if kind == "secrets" else Key)(spec["name"])
        self.add_version(kind, obj, spec)
        self.state.add(kind, obj)
        return obj

    def add_version(self, kind, obj, spec):
        """Control API: POST /secrets|keys/{name}/rotate: a new latest version.
        A key keeps its type unless the spec names another."""
        if kind == "secrets":
            ver = self.secret_version(spec)
        else:
            if obj.versions:
                last = obj.latest
                base = {"kty": last.kty, "key_ops": last.key_ops}
                if pki.is_ec(last.key):
                    base["crv"] = pki.curve_name(last.key)
                else:
                    base["key_size"] = last.key.key_size
                spec = dict(base, **spec)
            ver = self.key_version(spec)
        self.state.add_version(obj, ver)
        return ver


def seed_secrets(factory):
    """The secrets of their own the tests rely on (README.md lists them)."""
    now = factory.now
    big = hashlib.sha256(b"kvfs big secret").hexdigest()
    big = (big * (SECRET_MAX_BYTES // len(big) + 1))[:SECRET_MAX_BYTES]
    seeds = [
        ("db-password", 40, [{"value": "correct horse battery staple"}]),
        ("app-config", 39, [{"value": '{"feature": true, "level": 3}',
                             "content_type": "application/json"}]),
        ("tagged-secret", 38, [{"value": "tagged", "tags": {"env": "prod", "team": "db"}}]),
        ("rotated-secret", 90, [{"value": "rotated-1"}, {"value": "rotated-2"},
                                {"value": "rotated-3", "content_type": "text/plain"}]),
        ("disabled-secret", 37, [{"value": "disabled", "enabled": False}]),
        ("expired-secret", 400, [{"value": "expired", "nbf": now - 400 * DAY,
                                  "exp": now - 35 * DAY}]),
        ("future-secret", 2, [{"value": "future", "nbf": now + 30 * DAY,
                               "exp": now + 395 * DAY}]),
        ("newline-secret", 36, [{"value": "line one\nline two\n"}]),
        ("big-secret", 35, [{"value": big, "content_type": "text/plain"}]),
    ]
    return _seed_objects(factory, "secrets", seeds)


def seed_bulk_secrets(factory, n):
    """n plain secrets bulk-secret-000... (for --bulk-secrets): one version
    each, enabled, no contentType, no tags, a value of 32 to 64 random
    base64url characters (lengths spread evenly), created a minute apart.
    No per-secret crypto: the values come from one os.urandom read, so
    thousands start in well under a second."""
    raw = pki.b64url(os.urandom(48 * n + 48)) if n else ""
    out = []
    for i in range(n):
        size = BULK_SECRET_MIN + i % (BULK_SECRET_MAX - BULK_SECRET_MIN + 1)
        obj = Secret("bulk-secret-%03d" % i)
        obj.versions.append(SecretVersion(raw[i * 64:i * 64 + size],
                                          factory.now - 20 * DAY + i * 60))
        factory.state.add("secrets", obj)
        out.append(obj)
    return out


def seed_keys(factory):
    """The keys of their own the tests rely on (README.md lists them)."""
    seeds = [
        ("rsa-key", 40, [{"kty": "RSA", "tags": {"purpose": "signing"}}]),
        ("ec-p256-key", 39, [{"kty": "EC", "crv": "P-256"}]),
        ("ec-p384-key", 38, [{"kty": "EC", "crv": "P-384"}]),
        ("ec-p521-key", 37, [{"kty": "EC", "crv": "P-521"}]),
        ("rotated-key", 90, [{"kty": "EC", "crv": "P-256"}] * 3),
        ("disabled-key", 36, [{"kty": "EC", "crv": "P-256", "enabled": False}]),
        ("hsm-rsa-key", 35, [{"kty": "RSA-HSM"}]),
        ("hsm-ec-key", 34, [{"kty": "EC-HSM", "crv": "P-256"}]),
    ]
    return _seed_objects(factory, "keys", seeds)


def _seed_objects(factory, kind, seeds):
    """Adds [(name, age in days, [version spec, ...])] of secrets or keys;
    several versions are 30 days apart, the last one the newest."""
    cls, make = ((Secret, factory.secret_version) if kind == "secrets"
                 else (Key, factory.key_version))
    out = []
    for name, age, specs in seeds:
        obj = cls(name)
        for i, spec in enumerate(specs):
            obj.versions.append(make(spec, created=factory.now - (age - 30 * i) * DAY))
        factory.state.add(kind, obj)
        out.append(obj)
    return out


def seed_vault(factory, bulk, one_leaf=False):
    """The deterministic set of certificates the tests rely on, and bulk
    certificates bulk-000...; one_leaf: the bulk certificates' versions
    share one leaf (names differ, bytes do not), for a vault too large to
    issue a leaf each."""
    now = factory.now
    pool = factory.pool
    key_a = pool.rsa()       # www, WebFrontend, disabled-cert
    key_b = pool.rsa()       # hsm-key, reversed-chain, selfsigned
    certs = []

    def add(cert, *versions):
        cert.versions.extend(versions)
        factory.state.add_certificate(cert)
        certs.append(cert)

    c = factory.new_certificate("www", tags={"env": "prod", "team": "web"},
                                dns_names=["www.kvfs.test", "kvfs.test"], created=now - 50 * DAY)
    add(c, factory.issue(c, now - 50 * DAY, key=key_a))

    c = factory.new_certificate("api", kty="EC", crv="P-256", content_type=PFX_TYPE,
                                created=now - 49 * DAY)
    add(c, factory.issue(c, now - 49 * DAY))

    c = factory.new_certificate("mail", kty="EC", crv="P-384", tags={"team": "mail"},
                                created=now - 90 * DAY)
    add(c,
        factory.issue(c, now - 90 * DAY, updated=now - 90 * DAY + 5),
        factory.issue(c, now - 60 * DAY, updated=now - 60 * DAY + 5),
        factory.issue(c, now - 30 * DAY, updated=now - 30 * DAY + 5))

    c = factory.new_certificate("WebFrontend", created=now - 48 * DAY)
    add(c, factory.issue(c, now - 48 * DAY, key=key_a))

    c = factory.new_certificate("disabled-cert", created=now - 47 * DAY)
    add(c, factory.issue(c, now - 47 * DAY, key=key_a, updated=now - 10 * DAY, enabled=False))

    c = factory.new_certificate("expired-cert", kty="EC", created=now - 400 * DAY + 600)
    add(c, factory.issue(c, now - 400 * DAY + 600, nbf=now - 400 * DAY, exp=now - 35 * DAY))

    c = factory.new_certificate("future-cert", kty="EC", created=now - 2 * DAY)
    add(c, factory.issue(c, now - 2 * DAY, nbf=now + 30 * DAY, exp=now + 395 * DAY))

    c = factory.new_certificate("hsm-key", kty="RSA-HSM", content_type=PFX_TYPE, exportable=False,
                                created=now - 46 * DAY)
    add(c, factory.issue(c, now - 46 * DAY, key=key_b))

    c = factory.new_certificate("reversed-chain", created=now - 45 * DAY)
    add(c, factory.issue(c, now - 45 * DAY, key=key_b, chain_reversed=True))

    c = factory.new_certificate("selfsigned", content_type=PFX_TYPE, issuer="Self",
                                created=now - 44 * DAY)
    add(c, factory.issue(c, now - 44 * DAY, key=key_b))

    leaf = None
    for i in range(bulk):
        name = "bulk-%03d" % i
        created = now - 20 * DAY + i * 60
        c = factory.new_certificate(name, kty="EC", crv="P-256", created=created)
        if leaf is None or not one_leaf:
            leaf = factory.issue(c, created, key=factory.shared_ec)
            add(c, leaf)
        else:
            add(c, leaf.sibling(created))
    return certs


def make_tls(state_dir, hosts_ip=("127.0.0.1",), hosts_dns=("localhost",)):
    """A throwaway CA and one server certificate for every HTTPS server."""
    now = int(time.time())
    ca_key = pki.new_ec_key("P-256")
    ca = pki.make_ca("kvfs fake Azure TLS CA", ca_key, now - 3600, now + 90 * DAY)
    key = pki.new_ec_key("P-256")
    cert = pki.make_leaf("127.0.0.1", key, now - 3600, now + 30 * DAY, ca, ca_key,
                         dns_names=hosts_dns, ip_addresses=hosts_ip,
                         ekus=(pki.EKU_SERVER,))
    ca_file = os.path.join(state_dir, "tls-ca.pem")
    pki.write_public(ca_file, pki.cert_pem(ca))
    cert_file = os.path.join(state_dir, "tls-server.pem")
    pki.write_public(cert_file, pki.cert_pem(cert) + pki.cert_pem(ca))
    key_file = os.path.join(state_dir, "tls-server.key")
    pki.write_private(key_file, pki.key_pem(key))
    return ca_file, cert_file, key_file


def write_federated_token(path, client_id, lifetime=7 * DAY):
    """A Kubernetes-style projected service-account token (any signature)."""
    now = int(time.time())
    token = jwtutil.encode_unsigned(
        {"alg": "RS256", "kid": "kvfs-fake-oidc", "typ": "JWT"},
        {"aud": [FEDERATED_AUDIENCE], "iss": FEDERATED_ISSUER, "sub": FEDERATED_SUBJECT,
         "exp": now + lifetime, "iat": now, "nbf": now,
         "kubernetes.io": {"namespace": "kvfs", "serviceaccount": {"name": "kvfs"}},
         "client_id_hint": client_id})
    tmp = path + ".tmp"
    pki.write_private(tmp, token)
    os.replace(tmp, path)
    return token


def make_apps(state_dir, pool):
    """The registered apps and their credential files."""
    apps = {}
    for name in ("secret", "reader", "nolist"):
        secret = entra_secret()
        path = os.path.join(state_dir, "client-secret" if name == "secret"
                            else "client-secret-%s" % name)
        pki.write_private(path, secret)
        apps[name] = {"client_id": guid(), "secret": secret, "secret_file": path}

    now = int(time.time())
    key = pool.rsa()
    cert = pki.make_leaf("kvfs-test-client", key, now - 3600, now + 365 * DAY,
                         ekus=(pki.EKU_CLIENT,))
    cert_file = os.path.join(state_dir, "client-cert.pem")
    pki.write_private(cert_file, pki.key_pem(key) + pki.cert_pem(cert))
    password = "pfx-" + entra_secret()[:20]
    pfx = crypto_pkcs12.serialize_key_and_certificates(
        b"kvfs-test-client", key, cert, None,
        serialization.BestAvailableEncryption(password.encode()))
    pfx_file = os.path.join(state_dir, "client-cert.pfx")
    pki.write_private(pfx_file, pfx)
    pass_file = os.path.join(state_dir, "client-cert.pass")
    pki.write_private(pass_file, password)
    apps["cert"] = {"client_id": guid(), "cert_file": cert_file, "pfx_file": pfx_file,
                    "pfx_password": password, "pfx_password_file": pass_file,
                    "x5t": pki.x5t_sha1(cert), "x5t#S256": pki.x5t_sha256(cert),
                    "_cert": cert, "_key": key}

    wl_id = guid()
    token_file = os.path.join(state_dir, "federated-token")
    write_federated_token(token_file, wl_id)
    apps["workload"] = {"client_id": wl_id, "token_file": token_file,
                        "issuer": FEDERATED_ISSUER, "subject": FEDERATED_SUBJECT,
                        "audience": FEDERATED_AUDIENCE}
    return apps


def public_apps(apps):
    """apps without the in-memory objects, for info.json."""
    return {name: {k: v for k, v in app.items() if not k.startswith("_")}
            for name, app in apps.items()}


def dump_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)
