"""Microsoft Entra ID (HTTPS): OpenID discovery and the v2.0 token endpoint
for client credentials: client secret (form or HTTP Basic), certificate
JWT assertion (PS256/RS256, x5t#S256/x5t, verified for real) and a
federated workload token.  Errors carry real AADSTS codes in Entra's shape
(AZURE.md §4.4).  Also mints the access tokens for the managed identities.
"""

import base64
import hashlib
import os
import time
import uuid
from urllib.parse import parse_qsl, unquote

from cryptography.hazmat.primitives.serialization import Encoding

import jwtutil
from httpbase import BaseHandler
from seed import FEDERATED_AUDIENCE

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
OIDC_SCOPES = {"openid", "profile", "offline_access", "email"}
KNOWN_RESOURCES = (
    "https://vault.azure.net",
    "https://vault.azure.cn",
    "https://vault.usgovcloudapi.net",
    "https://vault.microsoftazure.de",
    "https://managedhsm.azure.net",
)
SKEW = 60
MAX_ASSERTION_LIFETIME = 600


def mint_token(fake, principal, audience, lifetime):
    """A JWT-shaped access token the vault will recognise, remembered in state."""
    now = int(time.time())
    tid = fake.tenant
    payload = {
        "aud": audience,
        "iss": "https://sts.windows.net/%s/" % tid,
        "iat": now, "nbf": now, "exp": now + int(lifetime),
        "aio": jwtutil.b64url_encode(os.urandom(24)),
        "appid": principal["client_id"],
        "appidacr": principal.get("appidacr", "1"),
        "idp": "https://sts.windows.net/%s/" % tid,
        "oid": principal["object_id"],
        "rh": jwtutil.b64url_encode(os.urandom(18)) + ".",
        "sub": principal["object_id"],
        "tid": tid,
        "uti": jwtutil.b64url_encode(os.urandom(16)),
        "ver": "1.0",
        "jti": str(uuid.uuid4()),
    }
    if principal.get("mi_res_id"):
        payload["xms_mirid"] = principal["mi_res_id"]
    header = {"typ": "JWT", "alg": "RS256", "x5t": fake.token_kid, "kid": fake.token_kid}
    token = jwtutil.encode_unsigned(header, payload)
    fake.state.issue_token(token, principal, audience, lifetime)
    return token


class AADError(Exception):
    def __init__(self, status, error, code, text):
        super().__init__(text)
        self.status = status
        self.error = error
        self.code = code
        self.text = text


def timestamp():
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())


class LoginHandler(BaseHandler):

    def extra_headers(self):
        return {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache",
                "x-ms-request-id": self.request_id,
                "client-request-id": self.headers.get("client-request-id") or self.request_id,
                "x-ms-ests-server": "2.1.fakeazure", "X-Content-Type-Options": "nosniff"}

    def error_body(self, error, code, text):
        trace = self.request_id
        corr = self.headers.get("client-request-id") or str(uuid.uuid4())
        ts = timestamp()
        return {
            "error": error,
            "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\n"
                                 "Timestamp: %s" % (code, text, trace, corr, ts),
            "error_codes": [code],
            "timestamp": ts,
            "trace_id": trace,
            "correlation_id": corr,
            "error_uri": "%s/error?code=%d" % (self.fake.urls["login"], code),
        }

    def fault_body(self, status):
        if status == 429:
            return self.error_body("temporarily_unavailable", 50196,
                                   "The server terminated an operation because it encountered "
                                   "a client request loop.")
        return self.error_body("temporarily_unavailable" if status == 503 else "server_error",
                               50000, "There was an error issuing a token or an issue with our "
                                      "sign-in service.")

    def route(self):
        try:
            self._route()
        except AADError as e:
            self.send_json(e.status, self.error_body(e.error, e.code, e.text))

    def _route(self):
        segs = [unquote(s) for s in self.url_path.split("/")[1:]]
        if len(segs) >= 3 and segs[0].lower() == "common" and segs[1] == "discovery" \
                and segs[2] == "instance":
            return self.instance_discovery()
        if not segs or not segs[0]:
            raise AADError(404, "invalid_request", 90002, "Tenant '' not found.")
        tenant, rest = segs[0], "/".join(segs[1:])
        if rest in ("v2.0/.well-known/openid-configuration", "oauth2/v2.0/token",
                    "discovery/v2.0/keys", ".well-known/openid-configuration"):
            self.check_tenant(tenant, rest)
        if rest == "v2.0/.well-known/openid-configuration":
            return self.send_json(200, self.openid_configuration())
        if rest == "discovery/v2.0/keys":
            return self.send_json(200, {"keys": []})
        if rest == "oauth2/v2.0/token":
            if self.command != "POST":
                raise AADError(400, "invalid_request", 900561,
                               "The endpoint only accepts POST, OPTIONS requests. "
                               "Received a %s request." % self.command)
            return self.token()
        raise AADError(404, "invalid_request", 900561, "Unknown endpoint %s." % self.url_path)

    def check_tenant(self, tenant, rest):
        if tenant.lower() == self.fake.tenant.lower():
            return
        text = ("Tenant '%s' not found. Check to make sure you have the correct tenant ID and "
                "are signing into the correct cloud. Check with your subscription "
                "administrator, this may happen if there are no active subscriptions for the "
                "tenant." % tenant)
        raise AADError(400, "invalid_request" if "token" in rest else "invalid_tenant",
                       90002, text)

    # --- discovery ----------------------------------------------------------

    def openid_configuration(self):
        base = "%s/%s" % (self.fake.urls["login"], self.fake.tenant)
        return {
            "token_endpoint": base + "/oauth2/v2.0/token",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                      "client_secret_basic"],
            "jwks_uri": base + "/discovery/v2.0/keys",
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": base + "/v2.0",
            "request_uri_parameter_supported": False,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": base + "/oauth2/v2.0/authorize",
            "device_authorization_endpoint": base + "/oauth2/v2.0/devicecode",
            "http_logout_supported": True,
            "frontchannel_logout_supported": True,
            "end_session_endpoint": base + "/oauth2/v2.0/logout",
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name",
                                 "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat",
                                 "auth_time", "acr", "nonce", "preferred_username", "name", "tid",
                                 "ver", "at_hash", "c_hash", "email"],
            "kerberos_endpoint": base + "/kerberos",
            "tenant_region_scope": "WW",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        }

    def instance_discovery(self):
        login = self.fake.urls["login"]
        host = login.split("://", 1)[1]
        self.send_json(200, {
            "tenant_discovery_endpoint": "%s/%s/v2.0/.well-known/openid-configuration"
                                         % (login, self.fake.tenant),
            "api-version": "1.1",
            "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
        })

    # --- token endpoint -----------------------------------------------------

    def token(self):
        form = {}
        for k, v in parse_qsl(self.body.decode("utf-8", "replace"), keep_blank_values=True):
            form.setdefault(k, v)
        basic_id = basic_secret = None
        auth = self.headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                raw = base64.b64decode(auth[6:].strip()).decode("utf-8")
                basic_id, _, basic_secret = raw.partition(":")
                basic_id, basic_secret = unquote(basic_id), unquote(basic_secret)
            except (ValueError, UnicodeDecodeError):
                raise AADError(401, "invalid_client", 7000215, "Invalid client secret provided.")
        client_id = form.get("client_id") or basic_id
        if not client_id:
            raise AADError(400, "invalid_request", 900144,
                           "The request body must contain the following parameter: 'client_id'.")
        grant = form.get("grant_type")
        if not grant:
            raise AADError(400, "invalid_request", 900144,
                           "The request body must contain the following parameter: "
                           "'grant_type'.")
        if grant != "client_credentials":
            raise AADError(400, "unsupported_grant_type", 70003,
                           "The app requested an unsupported grant type '%s'." % grant)
        app_name, app = self.fake.find_app(client_id)
        if app is None:
            raise AADError(400, "unauthorized_client", 700016,
                           "Application with identifier '%s' was not found in the directory "
                           "'%s'. This can happen if the application has not been installed by "
                           "the administrator of the tenant or consented to by any user in the "
                           "tenant. You may have sent your authentication request to the wrong "
                           "tenant." % (client_id, self.fake.tenant))
        resource = self.check_scope(form.get("scope"))
        secret = form.get("client_secret")
        if secret is None:
            secret = basic_secret
        assertion = form.get("client_assertion")
        if secret is not None:
            if app.get("secret") is None or secret != app["secret"]:
                raise AADError(401, "invalid_client", 7000215,
                               "Invalid client secret provided. Ensure the secret being sent in "
                               "the request is the client secret value, not the client secret "
                               "ID, for a secret added to app '%s'." % app["client_id"])
            appidacr = "1"
        elif assertion is not None:
            self.state.record_assertion(assertion)
            if form.get("client_assertion_type") != JWT_BEARER:
                raise AADError(400, "invalid_request", 700023,
                               "Client assertion type '%s' is not supported; expected '%s'."
                               % (form.get("client_assertion_type"), JWT_BEARER))
            if app_name == "workload":
                self.check_federated(app, assertion)
            else:
                self.check_cert_assertion(app, assertion)
            appidacr = "2"
        else:
            raise AADError(401, "invalid_client", 7000218,
                           "The request body must contain the following parameter: "
                           "'client_assertion' or 'client_secret'.")
        principal = dict(self.fake.principals[app_name])
        principal["appidacr"] = appidacr
        lifetime = self.state.entra_lifetime
        token = mint_token(self.fake, principal, resource, lifetime)
        self.send_json(200, {"token_type": "Bearer", "expires_in": lifetime,
                             "ext_expires_in": lifetime, "access_token": token})

    def check_scope(self, scope):
        if not scope:
            raise AADError(400, "invalid_request", 900144,
                           "The request body must contain the following parameter: 'scope'.")
        wanted = [s for s in scope.split() if s not in OIDC_SCOPES]
        if len(wanted) != 1 or not wanted[0].endswith("/.default"):
            raise AADError(400, "invalid_scope", 70011,
                           "The provided request must include a 'scope' input parameter. The "
                           "provided value for the input parameter 'scope' is not valid. The "
                           "scope %s is not valid." % scope)
        resource = wanted[0][: -len("/.default")]
        if resource.rstrip("/") not in KNOWN_RESOURCES:
            raise AADError(400, "invalid_resource", 500011,
                           "The resource principal named %s was not found in the tenant named "
                           "%s. This can happen if the application has not been installed by "
                           "the administrator of the tenant or consented to by any user in the "
                           "tenant. You might have sent your authentication request to the "
                           "wrong tenant." % (resource, self.fake.tenant))
        return resource.rstrip("/")

    def bad_assertion(self, reason, thumb=""):
        return AADError(401, "invalid_client", 700027,
                        "Client assertion failed signature validation. [Reason - %s, Thumbprint "
                        "of key used by client: '%s']" % (reason, thumb))

    def check_times(self, claims, max_lifetime):
        now = time.time()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, (int, float)) or isinstance(exp, bool):
            raise AADError(401, "invalid_client", 700024,
                           "Client assertion is not within its valid time range: no 'exp'.")
        ok = exp > now - SKEW
        if max_lifetime is not None and exp > now + max_lifetime + SKEW:
            ok = False
        if isinstance(nbf, (int, float)) and nbf > now + SKEW:
            ok = False
        if not ok:
            raise AADError(401, "invalid_client", 700024,
                           "Client assertion is not within its valid time range. Current time: "
                           "%s, assertion valid from %s, expiry time of assertion %s."
                           % (timestamp(), _fmt(nbf), _fmt(exp)))

    def check_cert_assertion(self, app, assertion):
        try:
            header, claims, signing_input, sig = jwtutil.parse(assertion)
        except jwtutil.JWTError as e:
            raise AADError(400, "invalid_request", 50027,
                           "JWT token is invalid or malformed: %s." % e)
        cert = app.get("_cert")
        if cert is None:
            raise self.bad_assertion("The key was not found.")
        der = cert.public_bytes(Encoding.DER)
        thumb = ""
        matched = False
        try:
            if "x5t#S256" in header:
                got = jwtutil.b64_decode_lenient(str(header["x5t#S256"]))
                thumb = got.hex().upper()
                if got != hashlib.sha256(der).digest():
                    raise self.bad_assertion("The key was not found.", thumb)
                matched = True
            if "x5t" in header:
                got = jwtutil.b64_decode_lenient(str(header["x5t"]))
                thumb = thumb or got.hex().upper()
                if got != hashlib.sha1(der).digest():
                    raise self.bad_assertion("The key was not found.", got.hex().upper())
                matched = True
        except jwtutil.JWTError:
            raise self.bad_assertion("The thumbprint is not valid base64.")
        if not matched:
            raise self.bad_assertion("The key was not found.")
        alg = header.get("alg")
        if alg not in ("PS256", "RS256"):
            raise self.bad_assertion("The signing algorithm '%s' is not supported." % alg, thumb)
        if not jwtutil.verify(alg, cert.public_key(), signing_input, sig):
            raise AADError(401, "invalid_client", 700027,
                           "Client assertion contains an invalid signature. [Reason - The "
                           "provided signature value did not match the expected signature "
                           "value., Thumbprint of key used by client: '%s']" % thumb)
        expected_aud = "%s/%s/oauth2/v2.0/token" % (self.fake.urls["login"], self.fake.tenant)
        if claims.get("aud") != expected_aud:
            raise AADError(401, "invalid_client", 700027,
                           "Client assertion failed validation. [Reason - The audience '%s' "
                           "does not match the token endpoint '%s'.]"
                           % (claims.get("aud"), expected_aud))
        if claims.get("iss") != app["client_id"] or claims.get("sub") != app["client_id"]:
            raise AADError(401, "invalid_client", 700021,
                           "Client assertion application identifier doesn't match 'client_id' "
                           "parameter. Review the documentation at "
                           "https://docs.microsoft.com/en-us/azure/active-directory/develop/"
                           "active-directory-certificate-credentials .")
        self.check_times(claims, MAX_ASSERTION_LIFETIME)

    def check_federated(self, app, assertion):
        try:
            with open(app["token_file"]) as f:
                current = f.read().strip()
        except OSError:
            current = None
        try:
            _, claims, _, _ = jwtutil.parse(assertion)
        except jwtutil.JWTError as e:
            raise AADError(400, "invalid_request", 50027,
                           "JWT token is invalid or malformed: %s." % e)
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if (assertion.strip() != current or claims.get("iss") != app["issuer"]
                or claims.get("sub") != app["subject"] or FEDERATED_AUDIENCE not in auds):
            raise AADError(400, "invalid_request", 70021,
                           "No matching federated identity record found for presented "
                           "assertion. Assertion Issuer: '%s'. Assertion Subject: '%s'. "
                           "Assertion Audience: '%s'. https://docs.microsoft.com/en-us/azure/"
                           "active-directory/develop/workload-identity-federation"
                           % (claims.get("iss"), claims.get("sub"), ",".join(map(str, auds))))
        self.check_times(claims, None)


def _fmt(ts):
    if not isinstance(ts, (int, float)) or isinstance(ts, bool):
        return "(none)"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(ts))

