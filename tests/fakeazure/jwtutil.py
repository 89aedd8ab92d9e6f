"""Just enough JWT (RFC 7515/7519) for the fake: parse, verify RS256/PS256,
sign (for self-checks), and mint opaque JWT-shaped access tokens.
"""

import base64
import binascii
import json
import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding


class JWTError(Exception):
    pass


def b64url_encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_decode_lenient(text):
    """base64url or standard base64, with or without padding."""
    if isinstance(text, str):
        text = text.encode("ascii", "replace")
    text = text.strip().replace(b"-", b"+").replace(b"_", b"/")
    text += b"=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise JWTError("bad base64: %s" % e)


def _json_part(obj):
    return b64url_encode(json.dumps(obj, separators=(",", ":")).encode())


def encode_unsigned(header, payload):
    """A JWT whose signature is random bytes (nobody verifies it)."""
    return "%s.%s.%s" % (_json_part(header), _json_part(payload), b64url_encode(os.urandom(256)))


def sign(header, payload, key):
    """Sign with RS256 or PS256 (header['alg'])."""
    signing_input = ("%s.%s" % (_json_part(header), _json_part(payload))).encode()
    alg = header.get("alg")
    if alg == "RS256":
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif alg == "PS256":
        sig = key.sign(signing_input, padding.PSS(mgf=padding.MGF1(hashes.SHA256()),
                                                  salt_length=32), hashes.SHA256())
    else:
        raise JWTError("unsupported alg %r" % alg)
    return signing_input.decode() + "." + b64url_encode(sig)


def parse(token):
    """-> (header, payload, signing_input bytes, signature bytes)."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise JWTError("a JWT has three dot-separated parts, this has %d" % len(parts))
    try:
        header = json.loads(b64_decode_lenient(parts[0]))
        payload = json.loads(b64_decode_lenient(parts[1]))
    except (ValueError, UnicodeDecodeError) as e:
        raise JWTError("undecodable JWT: %s" % e)
    if not isinstance(header, dict) or not isinstance(payload, dict):
        raise JWTError("JWT header and payload must be JSON objects")
    sig = b64_decode_lenient(parts[2]) if parts[2] else b""
    return header, payload, ("%s.%s" % (parts[0], parts[1])).encode(), sig


def verify(alg, public_key, signing_input, signature):
    """True when signature is a valid RS256/PS256 signature of signing_input."""
    try:
        if alg == "RS256":
            public_key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        elif alg == "PS256":
            # RFC 7518 §3.5: salt length equals the hash length, as .NET enforces
            public_key.verify(signature, signing_input,
                              padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                              hashes.SHA256())
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
