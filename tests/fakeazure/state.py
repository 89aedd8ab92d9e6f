"""The fake's mutable world: certificates, secrets and keys with their
versions, issued tokens, the request log, injected faults, settings and RBAC
denials.

All servers share one State.  Every public method takes the one lock for a
short time; nothing slow (key generation, PKCS#12 encoding) runs under it.
"""

import base64
import bisect
import calendar
import collections
import copy
import random
import re
import threading
import time

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

import pkcs12
import pki

PEM_TYPE = "application/x-pem-file"
PFX_TYPE = "application/x-pkcs12"

FAULT_KINDS = ("404", "410", "429", "500", "503", "delay", "reset", "truncate",
               "malformed", "foreign_nextlink", "redirect", "huge", "stall",
               "nextlink_loop", "nextlink_endless")
# Kinds that change a list page's nextLink rather than the response itself.
NEXTLINK_KINDS = ("foreign_nextlink", "nextlink_loop", "nextlink_endless")
SERVERS = ("vault", "login", "imds", "appservice", "arc", "foreign")
LOG_CAP = 200000


class Version:
    """One certificate version: the X.509 leaf, its key and the issuers."""

    def __init__(self, cert, key, chain, created, updated=None, enabled=True,
                 chain_reversed=False, version=None):
        self.version = version or pki.random_hex(16)
        self.cert = cert
        self.key = key
        self.chain = list(chain)          # issuers, nearest first
        self.chain_reversed = chain_reversed
        self.der = pki.cert_der(cert)
        self.x5t = pki.x5t_sha1(cert)
        self.cer = pki.b64std(self.der)
        self.created = int(created)
        self.updated = int(updated if updated is not None else created)
        self.enabled = enabled
        self.nbf = _ts(cert.not_valid_before)
        self.exp = _ts(cert.not_valid_after)
        self._pem = None
        self._pfx = None
        self._lock = threading.Lock()

    def sibling(self, created):
        """Another version with these bytes (the same leaf, key and chain),
        its own id and times: for bulk vaults too large to issue a leaf
        each (--bulk-one-leaf)."""
        v = copy.copy(self)
        v.version = pki.random_hex(16)
        v.created = v.updated = int(created)
        v._pem = v._pfx = None
        v._lock = threading.Lock()
        return v

    def pem_value(self, exportable):
        """PEM secret: PKCS#8 key first, then leaf, then issuers."""
        with self._lock:
            if self._pem is None:
                certs = [self.cert] + self.chain
                if self.chain_reversed:
                    certs.reverse()
                text = pki.key_pem(self.key) if exportable else ""
                text += "".join(pki.cert_pem(c) for c in certs)
                self._pem = text
            return self._pem

    def pfx_value(self, exportable):
        """PKCS#12 secret, base64, NULL password, SHA-1/3DES as Key Vault."""
        with self._lock:
            if self._pfx is None:
                der = pkcs12.build(self.key if exportable else None, self.cert, self.chain)
                self._pfx = base64.b64encode(der).decode("ascii")
            return self._pfx


    def bomb_value(self, count):
        """PKCS#12 work bomb (pkcs12.build_bomb) of this version, base64."""
        with self._lock:
            if getattr(self, "_bomb", None) is None or self._bomb[0] != count:
                der = pkcs12.build_bomb(self.key, self.cert, count)
                self._bomb = (count, base64.b64encode(der).decode("ascii"))
            return self._bomb[1]


def _ts(dt):
    return calendar.timegm(dt.utctimetuple())


class Versioned:
    """A named vault object (certificate, secret or key) and its versions,
    oldest first; the latest is the last one created."""

    def __init__(self, name):
        self.name = name
        self.versions = []

    @property
    def latest(self):
        return self.versions[-1]

    def find_version(self, version):
        v = version.lower()
        for ver in self.versions:
            if ver.version == v:
                return ver
        return None


class Certificate(Versioned):
    """A Key Vault certificate: its policy and its versions, oldest first."""

    def __init__(self, name, kty="RSA", key_size=2048, crv=None, content_type=PEM_TYPE,
                 exportable=True, tags=None, subject="", dns_names=(), issuer_name="Unknown",
                 ekus=("1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"), key_usage=(),
                 validity_months=12, policy_created=None):
        super().__init__(name)
        self.kty = kty
        self.key_size = key_size
        self.crv = crv
        self.content_type = content_type
        self.exportable = exportable
        self.tags = dict(tags or {})
        self.subject = subject
        self.dns_names = list(dns_names)
        self.issuer_name = issuer_name
        self.ekus = list(ekus)
        self.key_usage = list(key_usage)
        self.validity_months = validity_months
        self.policy_created = policy_created


class ObjectVersion:
    """One version of a secret or key: as in Key Vault, its own tags and
    attributes (nbf/exp None: not set)."""

    def __init__(self, created, tags=None, enabled=True, nbf=None, exp=None, updated=None,
                 version=None):
        self.version = version or pki.random_hex(16)
        self.tags = dict(tags or {})
        self.enabled = enabled
        self.nbf = nbf
        self.exp = exp
        self.created = int(created)
        self.updated = int(updated if updated is not None else created)


class SecretVersion(ObjectVersion):
    """One version of a secret: its value and contentType."""

    def __init__(self, value, created, content_type=None, **attrs):
        super().__init__(created, **attrs)
        self.value = value
        self.content_type = content_type


class Secret(Versioned):
    """A secret of its own (not backing a certificate)."""


# key_ops Key Vault gives a key created without key_ops, by key type
RSA_OPS = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
EC_OPS = ["sign", "verify"]


def default_key_ops(kty):
    return list(EC_OPS if kty.startswith("EC") else RSA_OPS)


class KeyVersion(ObjectVersion):
    """One version of a key: the private key (which the vault never gives
    out; the control API signs with it), its type and operations."""

    def __init__(self, key, kty, created, key_ops=None, exportable=False, **attrs):
        super().__init__(created, **attrs)
        self.key = key
        self.kty = kty
        self.key_ops = list(key_ops) if key_ops is not None else default_key_ops(kty)
        self.exportable = exportable


class Key(Versioned):
    """A key of its own (not backing a certificate)."""


EC_HASHES = {"P-256": ("ES256", hashes.SHA256), "P-384": ("ES384", hashes.SHA384),
             "P-521": ("ES512", hashes.SHA512)}


def jwk(key, kty, key_ops, kid):
    """The public JSON Web Key as Key Vault writes it: kid, kty, key_ops,
    then n/e (RSA) or crv/x/y (EC, coordinates padded to the field size),
    every number base64url without padding."""
    out = {"kid": kid, "kty": kty, "key_ops": list(key_ops)}
    if pki.is_ec(key):
        nums = key.public_key().public_numbers()
        size = (key.curve.key_size + 7) // 8
        out["crv"] = pki.curve_name(key)
        out["x"] = pki.b64url(nums.x.to_bytes(size, "big"))
        out["y"] = pki.b64url(nums.y.to_bytes(size, "big"))
    else:
        nums = key.public_key().public_numbers()
        out["n"] = pki.b64url(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big"))
        out["e"] = pki.b64url(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big"))
    return out


def public_pem(key):
    return key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def sign(key, data):
    """Signs data as a JWS algorithm would (RS256 with PKCS#1 v1.5, or
    ES256/384/512 by curve) and returns (alg, signature); EC signatures are
    DER, as OpenSSL's EVP_DigestVerify wants them."""
    if pki.is_ec(key):
        alg, hash_cls = EC_HASHES[pki.curve_name(key)]
        return alg, key.sign(data, ec.ECDSA(hash_cls()))
    return "RS256", key.sign(data, padding.PKCS1v15(), hashes.SHA256())


class Fault:
    def __init__(self, spec, seq):
        self.id = seq
        self.server = spec.get("server", "vault")
        self.kind = str(spec.get("kind", ""))
        if self.server not in SERVERS:
            raise ValueError("unknown server %r" % self.server)
        if self.kind not in FAULT_KINDS:
            raise ValueError("unknown fault kind %r" % self.kind)
        self.count = spec.get("count")
        seconds = spec.get("seconds")
        self.until = time.time() + float(seconds) if seconds is not None else None
        if self.count is None and self.until is None:
            self.count = 1
        if self.count is not None:
            self.count = int(self.count)
        self.path = spec.get("path")
        self.path_re = re.compile(self.path) if self.path else None
        self.query = spec.get("query")
        self.query_re = re.compile(self.query) if self.query else None
        self.retry_after = spec.get("retry_after")
        self.delay = float(spec.get("delay", 1.0))
        # stall: how long to hold the connection (the client gives up first)
        self.hold = float(spec.get("delay", 600.0))
        self.size_mb = float(spec.get("size_mb", 100))
        # p < 1: each matching request draws; seed makes the draws repeatable
        self.p = float(spec.get("p", 1.0))
        if not 0.0 < self.p <= 1.0:
            raise ValueError("p must be in (0, 1]")
        self.seed = spec.get("seed")
        self.rng = random.Random(self.seed)

    def live(self, now):
        if self.count is not None and self.count <= 0:
            return False
        if self.until is not None and now >= self.until:
            return False
        return True

    def describe(self):
        return {"id": self.id, "server": self.server, "kind": self.kind, "count": self.count,
                "until": self.until, "path": self.path, "query": self.query,
                "retry_after": self.retry_after, "delay": self.delay, "p": self.p,
                "seed": self.seed, "size_mb": self.size_mb}


class State:
    def __init__(self):
        self.lock = threading.RLock()
        self.certs = {}                 # lower-case name -> Certificate
        self.secrets = {}               # lower-case name -> Secret
        self.keys = {}                  # lower-case name -> Key
        self.names = {}                 # kind -> its sorted names, until an add or delete
        self.denied = {}                # principal name -> set of data actions refused
        self.deny_model = {}            # principal name -> "rbac" or "policy"
        self.tokens = {}                # access token -> dict
        self.issued = []                # every access token issued, for leak checks
        self.assertions = []            # every client assertion received
        self.arc_keys = set()           # Arc key file contents not yet used
        self.entra_lifetime = 3599
        self.mi_lifetime = 86399
        self.log = []
        self.log_seq = 0
        self.faults = []
        self.fault_seq = 0
        self.settings = {"empty_last_page": False, "hostile_names": [],
                         "malformed_cer": {}, "malformed_secret": {},
                         "pkcs12_bomb": {}, "padded_items": {}}
        self.foreign_requests = []
        self.clock = int(time.time())
        self.served = collections.deque()   # times of requests the budget let through

    # --- certificates, secrets and keys ---------------------------------------

    def collection(self, kind):
        """The dict of "certificates", "secrets" or "keys" (name -> object)."""
        return {"certificates": self.certs, "secrets": self.secrets, "keys": self.keys}[kind]

    def add(self, kind, obj):
        with self.lock:
            self.collection(kind)[obj.name.lower()] = obj
            self.names.pop(kind, None)

    def get(self, kind, name):
        with self.lock:
            return self.collection(kind).get(name.lower())

    def delete(self, kind, name):
        with self.lock:
            self.names.pop(kind, None)
            return self.collection(kind).pop(name.lower(), None)

    def after(self, kind, marker):
        """The objects that have a version whose lower-case names sort
        after marker (None: all), in that order, as an iterator: a list
        page costs O(log N) to find its start and O(1) per object after
        it, not a sort of the vault per page."""
        with self.lock:
            names = self.names.get(kind)
            if names is None:
                names = self.names[kind] = sorted(self.collection(kind))
            objs = self.collection(kind)
        i = 0 if marker is None else bisect.bisect_right(names, marker)
        # names is replaced on a change, never changed: a listing in
        # flight keeps the order it started with
        while i < len(names):
            o = objs.get(names[i])
            i += 1
            if o is not None and o.versions:
                yield o

    def sorted(self, kind):
        """The objects that have a version, by name case-insensitively."""
        with self.lock:
            objs = self.collection(kind)
            return [objs[k] for k in sorted(objs) if objs[k].versions]

    def name_taken(self, name):
        """Certificates, secrets and keys share names: a certificate owns
        the secret and the key of its name."""
        with self.lock:
            low = name.lower()
            return any(low in self.collection(k) for k in ("certificates", "secrets", "keys"))

    def add_certificate(self, cert):
        self.add("certificates", cert)

    def get_certificate(self, name):
        return self.get("certificates", name)

    def delete_certificate(self, name):
        return self.delete("certificates", name)

    def sorted_certificates(self):
        with self.lock:
            return [self.certs[k] for k in sorted(self.certs)]

    # --- RBAC -----------------------------------------------------------------

    def deny(self, principal, actions, model="rbac"):
        """Refuse these data actions to the principal (none: lift every
        denial), as an RBAC vault does ("rbac") or an access-policy one
        ("policy")."""
        with self.lock:
            self.denied[principal] = set(actions)
            self.deny_model[principal] = model
            return sorted(self.denied[principal])

    def denied_by(self, principal, action):
        """How the action is refused to the principal: "rbac", "policy",
        or None when it is not."""
        with self.lock:
            if action not in self.denied.get(principal, ()):
                return None
            return self.deny_model.get(principal, "rbac")

    def add_version(self, cert, version):
        with self.lock:
            cert.versions.append(version)

    def next_timestamp(self):
        """A fresh 'updated' value: now, and strictly increasing."""
        with self.lock:
            self.clock = max(self.clock + 1, int(time.time()))
            return self.clock

    # --- tokens -----------------------------------------------------------

    def issue_token(self, token, principal, audience, lifetime):
        now = time.time()
        with self.lock:
            self.tokens[token] = {"principal": principal, "aud": audience,
                                  "exp": now + lifetime, "iat": now}
            self.issued.append(token)
            del self.issued[:-1000]

    def record_assertion(self, assertion):
        with self.lock:
            self.assertions.append(assertion)
            del self.assertions[:-1000]

    def credentials(self):
        """Every token issued and assertion received (kvfs must log none)."""
        with self.lock:
            return {"tokens": list(self.issued), "assertions": list(self.assertions)}

    def lookup_token(self, token):
        with self.lock:
            return self.tokens.get(token)

    def revoke_tokens(self):
        with self.lock:
            n = len(self.tokens)
            self.tokens.clear()
            return n

    def set_lifetime(self, seconds):
        with self.lock:
            self.entra_lifetime = int(seconds)
            self.mi_lifetime = int(seconds)

    # --- request log --------------------------------------------------------

    def record(self, entry):
        with self.lock:
            self.log_seq += 1
            entry["seq"] = self.log_seq
            self.log.append(entry)
            if len(self.log) > LOG_CAP:
                del self.log[: len(self.log) - LOG_CAP]

    def get_log(self):
        with self.lock:
            return list(self.log)

    def reset_log(self):
        with self.lock:
            self.log.clear()

    # --- faults -------------------------------------------------------------

    def add_fault(self, spec):
        with self.lock:
            self.fault_seq += 1
            fault = Fault(spec, self.fault_seq)
            self.faults.append(fault)
            return fault

    def clear_faults(self):
        with self.lock:
            self.faults.clear()

    def list_faults(self):
        now = time.time()
        with self.lock:
            return [f.describe() for f in self.faults if f.live(now)]

    def take_fault(self, server, path, kinds=None, exclude=(), query=""):
        """Consume and return the first live fault matching this request
        (a fault with p < 1 matches only when its draw says so)."""
        now = time.time()
        with self.lock:
            self.faults = [f for f in self.faults if f.live(now)]
            for f in self.faults:
                if f.server != server or f.kind in exclude:
                    continue
                if kinds is not None and f.kind not in kinds:
                    continue
                if f.path_re is not None and not f.path_re.search(path):
                    continue
                if f.query_re is not None and not f.query_re.search(query or ""):
                    continue
                if f.p < 1.0 and f.rng.random() >= f.p:
                    continue
                if f.count is not None:
                    f.count -= 1
                return f
            return None

    # --- settings and the foreign origin ------------------------------------

    def setting(self, name):
        with self.lock:
            return self.settings.get(name)

    def update_settings(self, values):
        with self.lock:
            if "throttle" in values:
                self.served.clear()
            self.settings.update(values)
            return dict(self.settings)

    def admit(self):
        """The vault-wide budget (setting "throttle": {"requests": R,
        "window": S}): True while fewer than R requests were served in the
        last S seconds, and the request then counts; False means 429.
        Throttled requests do not use up the budget."""
        now = time.monotonic()
        with self.lock:
            limit = self.settings.get("throttle")
            if not limit:
                return True
            window = float(limit.get("window", 10))
            while self.served and self.served[0] <= now - window:
                self.served.popleft()
            if len(self.served) >= int(limit["requests"]):
                return False
            self.served.append(now)
            return True

    def record_foreign(self, entry):
        with self.lock:
            self.foreign_requests.append(entry)

    def get_foreign(self):
        with self.lock:
            return list(self.foreign_requests)

    def reset_foreign(self):
        with self.lock:
            self.foreign_requests.clear()
