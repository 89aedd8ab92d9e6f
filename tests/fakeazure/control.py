"""Control API (plain HTTP JSON) that tests use to observe and steer the
fake: request log, vault state, rotate/disable/enable/delete/create
certificates, secrets and keys, signatures with a key's private half, RBAC
denials, token lifetimes and revocation, settings, fault injection, and
what the foreign origin received.  Its own requests are not logged.
"""

import base64
import re
from urllib.parse import unquote

from httpbase import BaseHandler
from pki import key_pem
from seed import write_federated_token
from state import jwk, public_pem, sign

KINDS = ("certificates", "secrets", "keys")
NAME_RE = re.compile(r"^[0-9A-Za-z-]{1,127}$")


class ControlError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class ControlHandler(BaseHandler):

    def route(self):
        try:
            body = self.read_json_body()
        except ValueError as e:
            return self.send_json(400, {"error": "request body is not JSON: %s" % e})
        try:
            result = self.dispatch(self.command, self.url_path.rstrip("/") or "/", body)
        except ControlError as e:
            return self.send_json(e.status, {"error": str(e)})
        except (KeyError, ValueError, TypeError, re.error) as e:
            return self.send_json(400, {"error": "bad request: %r" % (e,)})
        self.send_json(200, result)

    def find(self, kind, name):
        obj = self.state.get(kind, name)
        if obj is None or not obj.versions:
            raise ControlError(404, "no %s named %r" % (kind[:-1], name))
        return obj

    def find_key(self, name):
        """A key, or the key behind a certificate of that name."""
        if self.state.get("keys", name) is None and self.state.get("certificates", name):
            return self.find("certificates", name)
        return self.find("keys", name)

    def dispatch(self, method, path, body):
        state = self.state
        fake = self.fake
        if path == "/health":
            return {"ok": True}
        if path == "/info":
            return fake.info
        if path == "/log":
            if method == "GET":
                return state.get_log()
            if method == "DELETE":
                state.reset_log()
                return {"ok": True}
        if path == "/log/reset" and method == "POST":
            state.reset_log()
            return {"ok": True}
        if path == "/state" and method == "GET":
            return self.dump_state()
        m = re.match(r"^/(certificates|secrets|keys)$", path)
        if m and method == "POST":
            return self.create(m.group(1), body)
        m = re.match(r"^/(certificates|secrets|keys)/([^/]+)/versions/([^/]+)"
                     r"(?:/(disable|enable|private))?$", path)
        if m:
            kind, action = m.group(1), m.group(4)
            obj = self.find_key(unquote(m.group(2))) if action == "private" \
                else self.find(kind, unquote(m.group(2)))
            ver = obj.find_version(unquote(m.group(3)))
            if ver is None:
                raise ControlError(404, "no version %r of %r" % (m.group(3), obj.name))
            if action is None and method == "DELETE":
                with state.lock:
                    obj.versions.remove(ver)
                return {"deleted": ver.version}
            if action == "private" and method == "GET" and kind == "keys":
                return self.private(obj, ver)
            if action in ("disable", "enable") and method == "POST":
                return self.set_enabled(obj, ver, action == "enable")
        m = re.match(r"^/certificates/([^/]+)/tags$", path)
        if m and method == "POST":
            return self.set_tags(self.find("certificates", unquote(m.group(1))),
                                 body.get("tags") or {})
        m = re.match(r"^/(certificates|secrets|keys)/([^/]+)"
                     r"(?:/(rotate|disable|enable|sign|private))?$", path)
        if m:
            kind, name, action = m.group(1), unquote(m.group(2)), m.group(3)
            if action is None and method == "DELETE":
                obj = state.delete(kind, name)
                if obj is None:
                    raise ControlError(404, "no %s named %r" % (kind[:-1], name))
                return {"deleted": obj.name}
            if action is None and method == "GET":
                return self.describe(kind, self.find(kind, name))
            if kind == "keys" and action in ("sign", "private"):
                obj = self.find_key(name)
                ver = obj.latest
                if body.get("version"):
                    ver = obj.find_version(body["version"])
                    if ver is None:
                        raise ControlError(404, "no version %r of %r" % (body["version"], name))
                if action == "private" and method == "GET":
                    return self.private(obj, ver)
                if action == "sign" and method == "POST":
                    alg, sig = sign(ver.key, base64.b64decode(body["data"], validate=True))
                    return {"kid": self.kid(obj, ver), "version": ver.version, "alg": alg,
                            "signature": base64.b64encode(sig).decode("ascii")}
            if action == "rotate" and method == "POST":
                obj = self.find(kind, name)
                if kind == "certificates":
                    ver = fake.factory.rotate(obj)
                    return {"name": obj.name, "version": ver.version, "x5t": ver.x5t}
                ver = fake.factory.add_version(kind, obj, body or {})
                return {"name": obj.name, "version": ver.version}
            if action in ("disable", "enable") and method == "POST":
                obj = self.find(kind, name)
                return self.set_enabled(obj, obj.latest, action == "enable")
        if path == "/rbac" and method == "POST":
            principal = body["principal"]
            if principal not in fake.principals:
                raise ControlError(404, "no principal named %r" % principal)
            model = body.get("model", "rbac")
            if model not in ("rbac", "policy"):
                raise ControlError(400, "model is rbac or policy, not %r" % model)
            return {"principal": principal, "model": model,
                    "deny": state.deny(principal, body.get("deny", []), model)}
        if path == "/tokens" and method == "POST":
            state.set_lifetime(body["lifetime"])
            return {"lifetime": state.entra_lifetime}
        if path == "/credentials" and method == "GET":
            return self.state.credentials()
        if path == "/tokens/revoke" and method == "POST":
            return {"revoked": state.revoke_tokens()}
        if path == "/settings":
            if method == "POST":
                return state.update_settings(body)
            if method == "GET":
                return state.update_settings({})
        if path == "/faults":
            if method == "POST":
                try:
                    fault = state.add_fault(body)
                except ValueError as e:
                    raise ControlError(400, str(e))
                return fault.describe()
            if method == "DELETE":
                state.clear_faults()
                return {"ok": True}
            if method == "GET":
                return state.list_faults()
        if path == "/foreign":
            if method == "GET":
                return {"requests": state.get_foreign()}
            if method == "DELETE":
                state.reset_foreign()
                return {"ok": True}
        if path == "/foreign/reset" and method == "POST":
            state.reset_foreign()
            return {"ok": True}
        if path == "/federated-token" and method == "POST":
            app = fake.apps["workload"]
            token = write_federated_token(app["token_file"], app["client_id"],
                                          int(body.get("lifetime", 7 * 86400)))
            return {"token_file": app["token_file"], "token": token}
        raise ControlError(404, "no control route %s %s" % (method, path))

    def create(self, kind, body):
        """POST /certificates, /secrets or /keys: a new object, 409 if a
        certificate, secret or key has that name already."""
        name = body["name"]
        if self.state.name_taken(name):
            raise ControlError(409, "%r exists" % name)
        if not NAME_RE.match(name):
            raise ControlError(400, "invalid name %r" % name)
        factory = self.fake.factory
        if kind == "certificates":
            obj = factory.create_from_spec(body)
        else:
            obj = factory.create_object(kind, body)
        return {"name": obj.name, "version": obj.latest.version}

    def set_enabled(self, obj, ver, enabled):
        with self.state.lock:
            ver.enabled = enabled
            ver.updated = self.state.next_timestamp()
        return {"name": obj.name, "version": ver.version, "enabled": ver.enabled}

    def set_tags(self, cert, tags):
        """As Key Vault's update of a certificate: its tags replaced, and
        the latest version's updated bumped."""
        with self.state.lock:
            cert.tags = {str(k): str(v) for k, v in tags.items()}
            cert.latest.updated = self.state.next_timestamp()
        return {"name": cert.name, "tags": dict(cert.tags)}

    def kid(self, obj, ver):
        return "%s/keys/%s/%s" % (self.fake.urls["vault"], obj.name, ver.version)

    def private(self, obj, ver):
        """The private key of a key version (PKCS#8 PEM), which the vault never serves."""
        return {"kid": self.kid(obj, ver), "version": ver.version, "pem": key_pem(ver.key)}

    @staticmethod
    def attrs(ver):
        return {"version": ver.version, "enabled": ver.enabled, "nbf": ver.nbf, "exp": ver.exp,
                "created": ver.created, "updated": ver.updated, "tags": dict(ver.tags)}

    def describe(self, kind, obj):
        if kind == "certificates":
            return self.describe_certificate(obj)
        latest = obj.latest
        out = {"name": obj.name, "enabled": latest.enabled, "nbf": latest.nbf,
               "exp": latest.exp, "created": latest.created, "updated": latest.updated,
               "tags": dict(latest.tags), "latest": latest.version}
        if kind == "secrets":
            out["content_type"] = latest.content_type
            out["versions"] = [dict(self.attrs(v), value=v.value, content_type=v.content_type)
                               for v in obj.versions]
        else:
            out.update(kty=latest.kty, key_ops=list(latest.key_ops), exportable=latest.exportable)
            out["versions"] = [dict(self.attrs(v), kty=v.kty, key_ops=list(v.key_ops),
                                    exportable=v.exportable, public_pem=public_pem(v.key),
                                    jwk=jwk(v.key, v.kty, v.key_ops, self.kid(obj, v)))
                               for v in obj.versions]
        return out

    def describe_certificate(self, cert):
        latest = cert.latest
        return {
            "name": cert.name,
            "enabled": latest.enabled,
            "nbf": latest.nbf,
            "exp": latest.exp,
            "created": latest.created,
            "updated": latest.updated,
            "tags": dict(cert.tags),
            "content_type": cert.content_type,
            "exportable": cert.exportable,
            "kty": cert.kty,
            "key_size": cert.key_size,
            "crv": cert.crv,
            "subject": cert.subject,
            "latest": latest.version,
            "versions": [{
                "version": v.version, "x5t": v.x5t, "cer": v.cer, "created": v.created,
                "updated": v.updated, "enabled": v.enabled, "nbf": v.nbf, "exp": v.exp,
            } for v in cert.versions],
        }

    def dump_state(self):
        """Every certificate, and every secret and key of its own (the
        secrets and keys behind certificates are the certificates')."""
        with self.state.lock:
            return {kind: [self.describe(kind, o) for o in self.state.sorted(kind)]
                    for kind in KINDS}
