"""Control API (plain HTTP JSON) that tests use to observe and steer the
fake: request log, vault state, rotate/disable/enable/delete/create
certificates, token lifetimes and revocation, settings, fault injection,
and what the foreign origin received.  Its own requests are not logged.
"""

import re
from urllib.parse import unquote

from httpbase import BaseHandler
from seed import write_federated_token


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

    def cert(self, name):
        cert = self.state.get_certificate(name)
        if cert is None or not cert.versions:
            raise ControlError(404, "no certificate named %r" % name)
        return cert

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
        if path == "/certificates" and method == "POST":
            if state.get_certificate(body["name"]) is not None:
                raise ControlError(409, "certificate %r exists" % body["name"])
            if not re.match(r"^[0-9A-Za-z-]{1,127}$", body["name"]):
                raise ControlError(400, "invalid certificate name %r" % body["name"])
            cert = fake.factory.create_from_spec(body)
            return {"name": cert.name, "version": cert.latest.version}
        m = re.match(r"^/certificates/([^/]+)/versions/([^/]+)(?:/(disable|enable))?$", path)
        if m:
            cert = self.cert(unquote(m.group(1)))
            ver = cert.find_version(unquote(m.group(2)))
            if ver is None:
                raise ControlError(404, "no version %r of %r" % (m.group(2), cert.name))
            action = m.group(3)
            if action is None and method == "DELETE":
                with state.lock:
                    cert.versions.remove(ver)
                return {"deleted": ver.version}
            if action and method == "POST":
                with state.lock:
                    ver.enabled = action == "enable"
                    ver.updated = state.next_timestamp()
                return {"name": cert.name, "version": ver.version, "enabled": ver.enabled}
        m = re.match(r"^/certificates/([^/]+)(?:/(rotate|disable|enable))?$", path)
        if m:
            name, action = unquote(m.group(1)), m.group(2)
            if action is None and method == "DELETE":
                cert = state.delete_certificate(name)
                if cert is None:
                    raise ControlError(404, "no certificate named %r" % name)
                return {"deleted": cert.name}
            if action is None and method == "GET":
                return self.describe(self.cert(name))
            if action and method == "POST":
                cert = self.cert(name)
                if action == "rotate":
                    ver = fake.factory.rotate(cert)
                    return {"name": cert.name, "version": ver.version, "x5t": ver.x5t}
                with state.lock:
                    cert.latest.enabled = action == "enable"
                    cert.latest.updated = state.next_timestamp()
                return {"name": cert.name, "version": cert.latest.version,
                        "enabled": cert.latest.enabled}
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

    def describe(self, cert):
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
        with self.state.lock:
            return {"certificates": [self.describe(c)
                                     for c in self.state.sorted_certificates() if c.versions]}
