"""PKCS#12 writer in the exact form Key Vault exports certificate secrets.

Key Vault's PFX (AZURE.md §2, samples S3) is protected with the *absent*
(NULL) password, not the empty BMPString: PKCS12_verify_mac(p12, NULL, 0)
succeeds and (p12, "", 0) fails.  Neither cryptography nor the openssl CLI
can write that, so this module encodes it directly (RFC 7292):

  PFX v3, authSafe = [ data{ pkcs8ShroudedKeyBag },
                       encryptedData{ certBag leaf, certBag issuers... } ]
  key and certificate bags: pbeWithSHAAnd3-KeyTripleDES-CBC, 2000 rounds
  MAC: HMAC-SHA1, 2000 rounds

The key bag carries the Windows CSP-name attribute real RSA exports carry.
A certificate-only PFX (non-exportable key) omits the key bag.
"""

import hashlib
import hmac
import os

from cryptography.hazmat.primitives import padding, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

ITERATIONS = 2000

OID_DATA = "1.2.840.113549.1.7.1"
OID_ENCRYPTED_DATA = "1.2.840.113549.1.7.6"
OID_SHROUDED_KEY_BAG = "1.2.840.113549.1.12.10.1.2"
OID_CERT_BAG = "1.2.840.113549.1.12.10.1.3"
OID_X509_CERT = "1.2.840.113549.1.9.22.1"
OID_PBE_SHA1_3DES = "1.2.840.113549.1.12.1.3"
OID_LOCAL_KEY_ID = "1.2.840.113549.1.9.21"
OID_MS_CSP_NAME = "1.3.6.1.4.1.311.17.1"
OID_SHA1 = "1.3.14.3.2.26"
OID_KEY_BAG = "1.2.840.113549.1.12.10.1.1"
OID_PBES2 = "1.2.840.113549.1.5.13"
OID_PBKDF2 = "1.2.840.113549.1.5.12"
OID_HMAC_SHA256 = "1.2.840.113549.2.9"
OID_AES256_CBC = "2.16.840.1.101.3.4.1.42"

MS_RSA_CSP = "Microsoft Enhanced RSA and AES Cryptographic Provider"


# --- minimal DER encoder -------------------------------------------------

def _len(n):
    if n < 0x80:
        return bytes([n])
    out = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(out)]) + out


def _tlv(tag, content):
    return bytes([tag]) + _len(len(content)) + content


def _seq(*items):
    return _tlv(0x30, b"".join(items))


def _set(*items):
    return _tlv(0x31, b"".join(sorted(items)))


def _int(n):
    length = max(1, (n.bit_length() + 8) // 8)
    return _tlv(0x02, n.to_bytes(length, "big", signed=True))


def _oid(dotted):
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([parts[0] * 40 + parts[1]])
    for p in parts[2:]:
        chunk = [p & 0x7F]
        p >>= 7
        while p:
            chunk.append(0x80 | (p & 0x7F))
            p >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _octets(data):
    return _tlv(0x04, data)


def _bmp(text):
    return _tlv(0x1E, text.encode("utf-16-be"))


def _null():
    return b"\x05\x00"


def _explicit(n, content):
    return _tlv(0xA0 + n, content)


def _attr(oid, value):
    return _seq(_oid(oid), _set(value))


# --- RFC 7292 appendix B key derivation (SHA-1) -----------------------------

def _kdf(password, salt, ident, iterations, n):
    u, v = 20, 64

    def stretch(data):
        if not data:
            return b""
        count = (len(data) + v - 1) // v * v
        return (data * (count // len(data) + 1))[:count]

    d = bytes([ident]) * v
    i = stretch(salt) + stretch(password)
    out = b""
    while True:
        a = hashlib.sha1(d + i).digest()
        for _ in range(iterations - 1):
            a = hashlib.sha1(a).digest()
        out += a
        if len(out) >= n:
            return out[:n]
        b = int.from_bytes((a * (v // u + 1))[:v], "big")
        blocks = []
        for j in range(0, len(i), v):
            x = (int.from_bytes(i[j:j + v], "big") + b + 1) % (1 << (v * 8))
            blocks.append(x.to_bytes(v, "big"))
        i = b"".join(blocks)


def _bmp_password(password):
    """NULL (None) password -> empty P, as Windows/Key Vault does."""
    if password is None:
        return b""
    return password.encode("utf-16-be") + b"\x00\x00"


def _pbe_encrypt(password, data):
    salt = os.urandom(8)
    pw = _bmp_password(password)
    key = _kdf(pw, salt, 1, ITERATIONS, 24)
    iv = _kdf(pw, salt, 2, ITERATIONS, 8)
    padder = padding.PKCS7(64).padder()
    padded = padder.update(data) + padder.finalize()
    enc = Cipher(algorithms.TripleDES(key), modes.CBC(iv)).encryptor()
    ct = enc.update(padded) + enc.finalize()
    alg = _seq(_oid(OID_PBE_SHA1_3DES), _seq(_octets(salt), _int(ITERATIONS)))
    return alg, ct


# --- PFX assembly -----------------------------------------------------------

def build(key, cert, chain=(), password=None):
    """DER PKCS#12 holding key (or None), cert and the chain certificates."""
    local_key_id = _attr(OID_LOCAL_KEY_ID, _octets(b"\x01\x00\x00\x00"))
    contents = []
    if key is not None:
        p8 = key.private_bytes(serialization.Encoding.DER,
                               serialization.PrivateFormat.PKCS8,
                               serialization.NoEncryption())
        alg, ct = _pbe_encrypt(password, p8)
        attrs = [local_key_id]
        if isinstance(key, rsa.RSAPrivateKey):
            attrs.append(_attr(OID_MS_CSP_NAME, _bmp(MS_RSA_CSP)))
        bag = _seq(_oid(OID_SHROUDED_KEY_BAG), _explicit(0, _seq(alg, _octets(ct))),
                   _set(*attrs))
        contents.append(_seq(_oid(OID_DATA), _explicit(0, _octets(_seq(bag)))))

    bags = []
    for i, c in enumerate([cert] + list(chain)):
        der = c.public_bytes(serialization.Encoding.DER)
        certbag = _seq(_oid(OID_X509_CERT), _explicit(0, _octets(der)))
        if i == 0 and key is not None:
            bags.append(_seq(_oid(OID_CERT_BAG), _explicit(0, certbag), _set(local_key_id)))
        else:
            bags.append(_seq(_oid(OID_CERT_BAG), _explicit(0, certbag)))
    alg, ct = _pbe_encrypt(password, _seq(*bags))
    enc_content_info = _seq(_oid(OID_DATA), alg, _tlv(0x80, ct))
    contents.append(_seq(_oid(OID_ENCRYPTED_DATA),
                         _explicit(0, _seq(_int(0), enc_content_info))))

    auth_safe = _seq(*contents)
    mac_salt = os.urandom(8)
    mac_key = _kdf(_bmp_password(password), mac_salt, 3, ITERATIONS, 20)
    digest = hmac.new(mac_key, auth_safe, hashlib.sha1).digest()
    mac_data = _seq(_seq(_seq(_oid(OID_SHA1), _null()), _octets(digest)),
                    _octets(mac_salt), _int(ITERATIONS))
    return _seq(_int(3), _seq(_oid(OID_DATA), _explicit(0, _octets(auth_safe))), mac_data)


def build_bomb(key, cert, count, iterations=200000):
    """A key derivation work bomb: no MAC, the key and cert in plain bags,
    then count encrypted ContentInfos of an empty SafeContents, each PBES2
    with PBKDF2-HMAC-SHA256 of iterations under the NULL password (copies
    of one, so that building it derives one key)."""
    salt, iv = os.urandom(8), os.urandom(16)
    k = hashlib.pbkdf2_hmac("sha256", b"", salt, iterations, 32)
    padder = padding.PKCS7(128).padder()
    padded = padder.update(_seq()) + padder.finalize()
    enc = Cipher(algorithms.AES(k), modes.CBC(iv)).encryptor()
    ct = enc.update(padded) + enc.finalize()
    kdf = _seq(_oid(OID_PBKDF2), _seq(_octets(salt), _int(iterations),
                                      _seq(_oid(OID_HMAC_SHA256), _null())))
    alg = _seq(_oid(OID_PBES2), _seq(kdf, _seq(_oid(OID_AES256_CBC), _octets(iv))))
    encrypted = _seq(_oid(OID_ENCRYPTED_DATA),
                     _explicit(0, _seq(_int(0), _seq(_oid(OID_DATA), alg, _tlv(0x80, ct)))))
    p8 = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())
    der = cert.public_bytes(serialization.Encoding.DER)
    bags = [_seq(_oid(OID_KEY_BAG), _explicit(0, p8)),
            _seq(_oid(OID_CERT_BAG),
                 _explicit(0, _seq(_oid(OID_X509_CERT), _explicit(0, _octets(der)))))]
    plain = _seq(_oid(OID_DATA), _explicit(0, _octets(_seq(*bags))))
    auth_safe = _seq(plain, *([encrypted] * count))
    return _seq(_int(3), _seq(_oid(OID_DATA), _explicit(0, _octets(auth_safe))))
