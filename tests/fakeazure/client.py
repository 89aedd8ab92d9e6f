"""Test-side helper for the fake Azure (standard library only).

    from client import FakeAzure
    with FakeAzure(tmp_path / "fake") as fake:
        fake.info["vault_url"]
        fake.rotate("www")
        fake.fault(kind="429", count=2, retry_after=1)
        [e for e in fake.log() if e["server"] == "vault"]

start() spawns tests/fakeazure/fakeazure.py with Debian's /usr/bin/python3
and waits for DIR/info.json; the fake's stdout and stderr go to
DIR/fakeazure.log and are quoted in the exception when start-up fails.
"""

import base64
import json
import os
import signal
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE = os.path.join(HERE, "fakeazure.py")
PYTHON = "/usr/bin/python3"


class FakeAzureError(RuntimeError):
    pass


class FakeAzure:
    def __init__(self, state_dir, bulk=60, python=PYTHON, extra_args=()):
        self.state_dir = os.path.abspath(str(state_dir))
        self.bulk = bulk
        self.python = python
        self.extra_args = list(extra_args)
        self.proc = None
        self.info = None
        self.log_path = os.path.join(self.state_dir, "fakeazure.log")
        self._ssl = None

    # --- life cycle ---------------------------------------------------------

    def start(self, timeout=30):
        os.makedirs(self.state_dir, exist_ok=True)
        info_path = os.path.join(self.state_dir, "info.json")
        if os.path.exists(info_path):
            os.unlink(info_path)
        out = open(self.log_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [self.python, FAKE, "--state-dir", self.state_dir, "--bulk", str(self.bulk)]
                + self.extra_args,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.path.exists(info_path):
                with open(info_path) as f:
                    self.info = json.load(f)
                return self
            if self.proc.poll() is not None:
                raise FakeAzureError("fake Azure exited with %d during start-up:\n%s"
                                     % (self.proc.returncode, self.output()))
            time.sleep(0.05)
        self.stop()
        raise FakeAzureError("fake Azure not ready after %ss:\n%s" % (timeout, self.output()))

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def output(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- control API --------------------------------------------------------

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.info["control_url"] + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise FakeAzureError("control %s %s: %d %s"
                                 % (method, path, e.code, e.read().decode("utf-8", "replace")))

    def health(self):
        return self.call("GET", "/health")

    def log(self, server=None):
        entries = self.call("GET", "/log")
        return [e for e in entries if server is None or e["server"] == server]

    def reset_log(self):
        return self.call("POST", "/log/reset")

    def state(self):
        return self.call("GET", "/state")

    # kind is "certificates" (the default), "secrets" or "keys"

    @staticmethod
    def _path(kind, name, *rest):
        return "/".join(["", kind, urllib.parse.quote(name)]
                        + [urllib.parse.quote(r) for r in rest])

    def certificate(self, name):
        return self.call("GET", self._path("certificates", name))

    def secret(self, name):
        """{"name", "latest", "versions": [{"version", "value", ...}], ...}"""
        return self.call("GET", self._path("secrets", name))

    def key(self, name):
        """{"name", "kty", "latest", "versions": [{"version", "jwk", "public_pem", ...}], ...}"""
        return self.call("GET", self._path("keys", name))

    def rotate(self, name, kind="certificates", **kw):
        """A new latest version; for a secret kw may give value, content_type,
        tags, enabled, nbf, exp (the value defaults to a fresh one)."""
        return self.call("POST", self._path(kind, name, "rotate"), kw)

    def set_tags(self, name, tags):
        """Replace a certificate's tags (its latest version's updated moves)."""
        return self.call("POST", self._path("certificates", name, "tags"), {"tags": tags})

    def disable(self, name, kind="certificates"):
        return self.call("POST", self._path(kind, name, "disable"))

    def enable(self, name, kind="certificates"):
        return self.call("POST", self._path(kind, name, "enable"))

    def delete(self, name, kind="certificates"):
        return self.call("DELETE", self._path(kind, name))

    def disable_version(self, name, version, kind="certificates"):
        return self.call("POST", self._path(kind, name, "versions", version, "disable"))

    def enable_version(self, name, version, kind="certificates"):
        return self.call("POST", self._path(kind, name, "versions", version, "enable"))

    def delete_version(self, name, version, kind="certificates"):
        return self.call("DELETE", self._path(kind, name, "versions", version))

    def create(self, name, kty="RSA", **kw):
        kw.update({"name": name, "kty": kty})
        return self.call("POST", "/certificates", kw)

    def create_secret(self, name, value=None, **kw):
        """kw: content_type, tags, enabled, nbf, exp."""
        kw["name"] = name
        if value is not None:
            kw["value"] = value
        return self.call("POST", "/secrets", kw)

    def create_key(self, name, kty="RSA", **kw):
        """kty RSA, RSA-HSM, EC or EC-HSM; kw: key_size, crv, key_ops, tags,
        enabled, nbf, exp, exportable."""
        kw.update({"name": name, "kty": kty})
        return self.call("POST", "/keys", kw)

    def sign(self, name, data, version=None):
        """Signs data (bytes) with the private half of a key version (the
        latest by default; a certificate's name signs with its key): RS256,
        or ES256/ES384/ES512 by curve with a DER signature.
        -> {"kid", "version", "alg", "signature": bytes}"""
        body = {"data": base64.b64encode(data).decode("ascii")}
        if version:
            body["version"] = version
        out = self.call("POST", self._path("keys", name, "sign"), body)
        out["signature"] = base64.b64decode(out["signature"])
        return out

    def private_key_pem(self, name, version=None):
        """The PKCS#8 PEM of a key version's private half (never served by the vault)."""
        path = (self._path("keys", name, "versions", version, "private") if version
                else self._path("keys", name, "private"))
        return self.call("GET", path)["pem"]

    def deny(self, principal, actions=(), model="rbac"):
        """Refuse these data actions to an app ("secret", "reader", ...)
        or identity ("mi:system", "mi:user"); no actions: lift its denials.
        model "rbac": 403 Forbidden/ForbiddenByRbac, as an RBAC vault;
        "policy": 403 Forbidden/AccessDenied, as an access-policy vault."""
        return self.call("POST", "/rbac", {"principal": principal, "deny": list(actions),
                                           "model": model})

    def fault(self, **kw):
        """kind=404|410|429|500|503|delay|reset|truncate|malformed|huge|stall|
        foreign_nextlink|nextlink_loop|nextlink_endless|redirect,
        server=vault|login|imds|appservice|arc|foreign,
        count=K or seconds=T, path=regex, query=regex, p=probability, seed=S,
        retry_after=S, delay=S, size_mb=M."""
        return self.call("POST", "/faults", kw)

    def faults(self):
        return self.call("GET", "/faults")

    def clear_faults(self):
        return self.call("DELETE", "/faults")

    def set_token_lifetime(self, seconds):
        return self.call("POST", "/tokens", {"lifetime": seconds})

    def credentials(self):
        """{"tokens": [every access token issued], "assertions": [every
        client assertion received]}: what kvfs must never print."""
        return self.call("GET", "/credentials")

    def revoke_tokens(self):
        return self.call("POST", "/tokens/revoke")

    def settings(self, **kw):
        return self.call("POST", "/settings", kw)

    def throttle(self, requests=None, window=10, retry_after=None):
        """Vault-wide budget: beyond `requests` in any `window` seconds the
        vault answers 429 Throttled; requests=None lifts it."""
        if requests is None:
            return self.settings(throttle=None)
        limit = {"requests": requests, "window": window}
        if retry_after is not None:
            limit["retry_after"] = retry_after
        return self.settings(throttle=limit)

    def foreign(self):
        return self.call("GET", "/foreign")["requests"]

    def reset_foreign(self):
        return self.call("POST", "/foreign/reset")

    def renew_federated_token(self, lifetime=7 * 86400):
        return self.call("POST", "/federated-token", {"lifetime": lifetime})

    # --- direct HTTPS access, for tests of the fake itself --------------------

    def ssl_context(self):
        if self._ssl is None:
            self._ssl = ssl.create_default_context(cafile=self.info["ca_file"])
        return self._ssl

    def request(self, url, method="GET", data=None, headers=None):
        """-> (status, headers, body bytes); never raises for HTTP errors."""
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        ctx = self.ssl_context() if url.startswith("https:") else None
        try:
            with urllib.request.urlopen(req, timeout=30, context=ctx) as resp:
                return resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read()

    def token(self, app="secret"):
        """An access token for app ('secret', 'reader' or 'nolist') via client secret."""
        a = self.info["apps"][app]
        form = urllib.parse.urlencode({
            "client_id": a["client_id"], "client_secret": a["secret"],
            "grant_type": "client_credentials",
            "scope": self.info["resource"] + "/.default"}).encode()
        status, _, body = self.request(self.info["token_endpoint"], "POST", form,
                                       {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 200:
            raise FakeAzureError("token for %s: %d %s" % (app, status, body[:500]))
        return json.loads(body)["access_token"]

    def vault_get(self, path, token=None, api_version="7.4"):
        """GET vault_url + path (api-version added) -> (status, json or None)."""
        sep = "&" if "?" in path else "?"
        url = "%s%s%sapi-version=%s" % (self.info["vault_url"], path, sep, api_version)
        headers = {"Authorization": "Bearer " + token} if token else {}
        status, _, body = self.request(url, headers=headers)
        try:
            return status, json.loads(body)
        except ValueError:
            return status, None
