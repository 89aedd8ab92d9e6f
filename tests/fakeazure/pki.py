"""Throwaway PKI for the fake Azure: keys, CAs, leaf certificates, PEM text.

Everything here is generated fresh per run.  RSA-2048 generation costs about
0.4 s on our machines, so keys come from a KeyPool that generates them in
background threads (cffi drops the GIL during OpenSSL calls) and the seed asks
for few distinct RSA keys.
"""

import base64
import datetime
import hashlib
import ipaddress
import os
import queue
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

EKU_SERVER = ExtendedKeyUsageOID.SERVER_AUTH
EKU_CLIENT = ExtendedKeyUsageOID.CLIENT_AUTH

CURVES = {
    "P-256": ec.SECP256R1,
    "P-384": ec.SECP384R1,
    "P-521": ec.SECP521R1,
}


def b64url(data):
    """base64url without padding, as Key Vault writes x5t."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64std(data):
    return base64.b64encode(data).decode("ascii")


def utc(ts):
    return datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).replace(tzinfo=None)


def cert_der(cert):
    return cert.public_bytes(serialization.Encoding.DER)


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem(key):
    """Unencrypted PKCS#8 PEM (BEGIN PRIVATE KEY), for RSA and EC alike."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def x5t_sha1(cert):
    return b64url(hashlib.sha1(cert_der(cert)).digest())


def x5t_sha256(cert):
    return b64url(hashlib.sha256(cert_der(cert)).digest())


def curve_name(key):
    """"P-256", "P-384" or "P-521" for an EC key."""
    return {c.name: n for n, c in CURVES.items()}[key.curve.name]


def is_ec(key):
    return isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey))


def new_ec_key(crv="P-256"):
    return ec.generate_private_key(CURVES[crv]())


def _new_rsa_key(bits=2048):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


class KeyPool:
    """RSA-2048 keys generated ahead of use, so that rotations are quick."""

    def __init__(self, spare=2):
        self._q = queue.Queue()
        self._spare = spare
        self._lock = threading.Lock()
        self._pending = 0

    def prime(self, n):
        """Start generating n keys in parallel (two workers)."""
        with self._lock:
            self._pending += n
        per = [n // 2 + n % 2, n // 2]
        for count in per:
            if count:
                threading.Thread(target=self._work, args=(count,), daemon=True).start()

    def _work(self, count):
        for _ in range(count):
            key = _new_rsa_key()
            self._q.put(key)
            with self._lock:
                self._pending -= 1

    def rsa(self, bits=2048):
        if bits != 2048:
            return _new_rsa_key(bits)
        key = self._q.get()
        with self._lock:
            refill = self._q.qsize() + self._pending < self._spare
            if refill:
                self._pending += 1
        if refill:
            threading.Thread(target=self._work, args=(1,), daemon=True).start()
        return key


def _sig_hash(issuer_key):
    if isinstance(issuer_key, ec.EllipticCurvePrivateKey):
        return hashes.SHA384() if issuer_key.curve.key_size >= 384 else hashes.SHA256()
    return hashes.SHA256()


def _name(cn, org="kvfs test"):
    return x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
    ])


def make_ca(cn, key, not_before, not_after, issuer_cert=None, issuer_key=None, path_len=None):
    """A CA certificate; self-signed when issuer_cert is None."""
    subject = _name(cn)
    signer_key = issuer_key or key
    issuer = issuer_cert.subject if issuer_cert is not None else subject
    b = (x509.CertificateBuilder()
         .subject_name(subject)
         .issuer_name(issuer)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(utc(not_before))
         .not_valid_after(utc(not_after))
         .add_extension(x509.BasicConstraints(ca=True, path_length=path_len), critical=True)
         .add_extension(x509.KeyUsage(
             digital_signature=True, content_commitment=False, key_encipherment=False,
             data_encipherment=False, key_agreement=False, key_cert_sign=True,
             crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer_cert is not None:
        b = b.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_cert.public_key()), critical=False)
    return b.sign(signer_key, _sig_hash(signer_key))


def make_leaf(cn, key, not_before, not_after, issuer_cert=None, issuer_key=None,
              dns_names=(), ip_addresses=(), ekus=(EKU_SERVER, EKU_CLIENT)):
    """An end-entity certificate; self-signed when issuer_cert is None."""
    subject = _name(cn)
    signer_key = issuer_key or key
    issuer = issuer_cert.subject if issuer_cert is not None else subject
    is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
    b = (x509.CertificateBuilder()
         .subject_name(subject)
         .issuer_name(issuer)
         .public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(utc(not_before))
         .not_valid_after(utc(not_after))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(
             digital_signature=True, content_commitment=False, key_encipherment=not is_ec,
             data_encipherment=False, key_agreement=False, key_cert_sign=False,
             crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if ekus:
        b = b.add_extension(x509.ExtendedKeyUsage(list(ekus)), critical=False)
    sans = [x509.DNSName(d) for d in dns_names]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ip_addresses]
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    auth_pub = (issuer_cert.public_key() if issuer_cert is not None else key.public_key())
    b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(auth_pub), critical=False)
    return b.sign(signer_key, _sig_hash(signer_key))


def random_hex(nbytes=16):
    return os.urandom(nbytes).hex()


def write_private(path, data):
    """Write a file readable by its owner only (mode 0600) from the start."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def write_public(path, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    with open(path, "wb") as f:
        f.write(data)
