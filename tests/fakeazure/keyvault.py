"""Key Vault data plane (HTTPS): certificates, secrets and keys (read only).

Shapes follow AZURE.md §0-§3 and the recorded bodies S1-S4: the 401
challenge, integer unix timestamps, x5t base64url, cer std base64, list pages
with an absolute nextLink (explicit port, unencoded $skiptoken, echoed
api-version and maxresults), undocumented `subject: ""`, `pending` and
`basic_constraints`, case-insensitive names, RBAC 403s, SecretDisabled.
Secrets and keys follow the 7.4 secrets.json/keys.json models: the listings
hold the certificate-backed secrets and keys too, with `"managed": true`;
a disabled secret is 403 SecretDisabled, a disabled key 200 with
"enabled": false (README.md).
"""

import base64
import heapq
import itertools
import json
import re
import time
import uuid
from urllib.parse import unquote

from httpbase import BaseHandler
from state import PFX_TYPE, Certificate, default_key_ops, jwk

API_VERSION_RE = re.compile(r"^(\d+\.\d+(-preview(\.\d+)?)?|\d{4}-\d{2}-\d{2}(-preview)?)$")
RECOVERY = {"recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90}
FWLINK = "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182"
CERT_READ = "Microsoft.KeyVault/vaults/certificates/read"
SECRET_LIST = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
SECRET_GET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
KEY_READ = "Microsoft.KeyVault/vaults/keys/read"
REGION = "westeurope"


class KVError(Exception):
    def __init__(self, status, code, message, inner=None, headers=None):
        super().__init__(message)
        self.status = status
        self.body = {"error": {"code": code, "message": message}}
        if inner:
            self.body["error"]["innererror"] = {"code": inner}
        self.headers = headers or {}


def bad_parameter(message):
    return KVError(400, "BadParameter", message)


def by_name(obj):
    """The order of a listing: names case-insensitively."""
    return obj.name.lower()


def encode_skiptoken(marker):
    raw = json.dumps({"NextMarker": marker, "TargetLocation": 0}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode("ascii")


def decode_skiptoken(token):
    try:
        text = token.replace("-", "+").replace("_", "/")
        text += "=" * (-len(text) % 4)
        obj = json.loads(base64.b64decode(text, validate=True))
        return obj["NextMarker"]
    except (ValueError, KeyError, TypeError):
        raise bad_parameter("The skip token '%s' is invalid." % token)


def attributes(ver, recovery=False):
    """enabled, nbf and exp (when set), created, updated[, recovery]."""
    attrs = {"enabled": ver.enabled}
    for name in ("nbf", "exp"):
        if getattr(ver, name) is not None:
            attrs[name] = getattr(ver, name)
    attrs.update(created=ver.created, updated=ver.updated)
    if recovery:
        attrs.update(RECOVERY)
    return attrs


class HostileName:
    """A list item whose name cannot be a path ('..', 'a%2Fb', 'a/b', 128
    characters): only ever listed, never served."""

    def __init__(self, name):
        self.name = name

    def item(self, vault):
        now = int(time.time())
        return {"id": "%s/certificates/%s" % (vault, self.name),
                "x5t": "AAAAAAAAAAAAAAAAAAAAAAAAAAA",
                "attributes": {"enabled": True, "nbf": now - 3600, "exp": now + 86400,
                               "created": now - 3600, "updated": now - 3600},
                "subject": ""}


class VaultHandler(BaseHandler):

    def extra_headers(self):
        h = {
            "Cache-Control": "no-cache",
            "Pragma": "no-cache",
            "Expires": "-1",
            "x-ms-keyvault-region": REGION,
            "x-ms-request-id": self.request_id,
            "x-ms-keyvault-service-version": "1.9.2031.1",
            "x-ms-keyvault-network-info": "conn_type=Ipv4;addr=%s;act_addr_fam=InterNetwork;"
                                          % self.client_address[0],
            "Strict-Transport-Security": "max-age=31536000;includeSubDomains",
            "X-Content-Type-Options": "nosniff",
        }
        crid = self.headers.get("x-ms-client-request-id")
        if crid:
            h["x-ms-client-request-id"] = crid
        if getattr(self, "rbac_assignment", None):
            h["x-ms-keyvault-rbac-assignment-id"] = self.rbac_assignment
        return h

    def fault_body(self, status):
        if status == 429:
            return {"error": {"code": "Throttled", "message":
                              "Request was not processed because too many requests were "
                              "received. Reason: VaultRequestTypeLimitReached"}}
        if status == 503:
            return {"error": {"code": "ServiceUnavailable",
                              "message": "The service is temporarily unavailable. Please retry."}}
        return {"error": {"code": "InternalServerError",
                          "message": "An unexpected error occurred while processing the request."}}

    @property
    def vault(self):
        return self.fake.urls["vault"]

    @property
    def resource(self):
        """The audience the vault expects; settable as {"resource": ...} for cloud tests."""
        return self.state.setting("resource") or self.fake.resource

    def _dispatch(self):
        self.rbac_assignment = None
        super()._dispatch()

    # --- entry ------------------------------------------------------------

    def route(self):
        if not self.state.admit():
            retry = (self.state.setting("throttle") or {}).get("retry_after")
            headers = {"Retry-After": str(retry)} if retry is not None else None
            return self.send_json(429, self.fault_body(429), headers)
        try:
            self._route()
        except KVError as e:
            self.send_json(e.status, e.body, e.headers)

    def _route(self):
        segs = [unquote(s) for s in self.url_path.split("/")[1:]]
        api = self.params.get("api-version")
        if api is None or api == "":
            raise bad_parameter("The 'api-version' query parameter is required.")
        if not API_VERSION_RE.match(api):
            raise bad_parameter("The specified version (%s) is not recognized. Consider using "
                                "the latest supported version (7.6)." % api)
        principal = self.authenticate()
        if self.command not in ("GET", "HEAD"):
            raise KVError(405, "BadParameter",
                          "The requested method %s is not supported by the fake." % self.command)
        kind = segs[0].lower() if segs else ""
        if kind == "certificates":
            self.certificates(segs[1:], principal, api)
        elif kind in ("secrets", "keys"):
            self.secrets_or_keys(kind, segs[1:], principal, api)
        else:
            self.authorize(principal, CERT_READ, "")
            raise KVError(404, "NotFound", "The requested resource %s was not found."
                          % self.url_path)

    # --- authentication and authorization ---------------------------------

    def challenge(self, message):
        fake = self.fake
        header = 'Bearer authorization="%s/%s", resource="%s"' % (
            fake.urls["login"], fake.tenant, self.resource)
        return KVError(401, "Unauthorized", message, headers={"WWW-Authenticate": header})

    def authenticate(self):
        auth = self.headers.get("Authorization")
        if not auth or not auth[:7].lower() == "bearer ":
            raise self.challenge("AKV10000: Request is missing a Bearer or PoP token.")
        token = auth[7:].strip()
        info = self.state.lookup_token(token)
        if info is None:
            raise self.challenge("AKV10013: Invalid token: signature validation failed "
                                 "or the token was revoked.")
        if info["exp"] <= time.time():
            raise self.challenge("AKV10032: Token has expired.")
        aud = info["aud"].rstrip("/")
        if aud != self.resource:
            raise self.challenge("AKV10022: Invalid audience. Expected %s, found: %s."
                                 % (self.resource, info["aud"]))
        return info["principal"]

    def authorize(self, principal, action, resource_tail):
        role = principal.get("role", "full")
        allowed = role == "full" or (role == "reader" and action == CERT_READ)
        model = self.state.denied_by(principal.get("name"), action)
        if model:
            allowed = False
        if allowed:
            self.rbac_assignment = principal.get("assignment") or str(uuid.uuid4())
            return
        fake = self.fake
        if model == "policy":
            # An access-policy vault: the permission the policy lacks, by
            # collection and operation (AZURE.md).
            kind = resource_tail.strip("/").split("/")[0] or "certificates"
            op = "list" if resource_tail.strip("/") == kind else "get"
            raise KVError(403, "Forbidden", (
                "The user, group or application 'appid=%s;oid=%s;iss=https://sts.windows.net/%s/' "
                "does not have %s %s permission on key vault '%s;location=%s'. For help resolving "
                "this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287"
            ) % (principal.get("client_id"), principal.get("object_id"), fake.tenant, kind, op,
                 fake.vault_name, REGION), inner="AccessDenied")
        message = (
            "Caller is not authorized to perform action on resource.\r\n"
            "If role assignments, deny assignments or role definitions were changed recently, "
            "please observe propagation time.\r\n"
            "Caller: appid=%s;oid=%s;iss=https://sts.windows.net/%s/\r\n"
            "Action: '%s'\r\n"
            "Resource: '/subscriptions/%s/resourcegroups/kvfs-test/providers/"
            "microsoft.keyvault/vaults/%s%s'\r\n"
            "Assignment: (not found)\r\n"
            "DenyAssignmentId: null\r\n"
            "DecisionReason: null \r\n"
            "Vault: %s;location=%s\r\n"
        ) % (principal.get("client_id"), principal.get("object_id"), fake.tenant, action,
             fake.subscription, fake.vault_name, resource_tail.lower(), fake.vault_name, REGION)
        raise KVError(403, "Forbidden", message, inner="ForbiddenByRbac")

    # --- certificates -------------------------------------------------------

    def not_found(self, what, noun="certificate"):
        """404 CertificateNotFound, SecretNotFound or KeyNotFound."""
        return KVError(404, noun.capitalize() + "NotFound",
                       "A %s with (name/id) %s was not found in this key vault. If you "
                       "recently deleted this %s you may be able to recover it using "
                       "the correct recovery command. %s" % (noun, what, noun, FWLINK))

    def no_route(self):
        return KVError(404, "NotFound", "The requested resource %s was not found."
                       % self.url_path)

    def certificates(self, rest, principal, api):
        if not rest or (len(rest) == 1 and rest[0] == ""):
            self.authorize(principal, CERT_READ, "/certificates")
            return self.list_certificates(api)
        name = rest[0]
        self.authorize(principal, CERT_READ, "/certificates/%s" % name)
        cert = self.state.get_certificate(name) if name else None
        sub = rest[1] if len(rest) > 1 else ""
        if len(rest) > 3 or (len(rest) == 3 and rest[2] != ""):
            raise self.no_route()
        if cert is None or not cert.versions:
            raise self.not_found(name if not sub else "%s/%s" % (name, sub))
        low = sub.lower()
        if low == "versions":
            return self.list_versions(cert.versions, "/certificates/%s/versions" % cert.name,
                                      api, lambda v: self.item(cert, v, with_version=True))
        if low == "policy":
            return self.send_json(200, self.policy(cert))
        if low == "pending":
            raise KVError(404, "PendingCertificateNotFound",
                          "Pending certificate not found: %s" % name)
        ver = cert.latest if sub == "" else cert.find_version(sub)
        if ver is None:
            raise self.not_found("%s/%s" % (name, sub))
        self.send_json(200, self.bundle(cert, ver))

    def page_args(self):
        raw = self.params.get("maxresults")
        if raw is None or raw == "":
            return 25
        try:
            k = int(raw)
        except ValueError:
            k = 0
        if not 1 <= k <= 25:
            raise bad_parameter("Invalid value '%s' for parameter maxresults. The value must be "
                                "between 1 and 25." % raw)
        return k

    def next_link(self, base_path, api, marker, k):
        origin = self.vault
        if self.state.take_fault("vault", self.url_path, kinds=("nextlink_loop",),
                                 query=self.raw_query):
            # back to the first page: a listing that never ends
            return "%s%s?api-version=%s&maxresults=%d" % (origin, base_path, api, k)
        if self.state.take_fault("vault", self.url_path, kinds=("nextlink_endless",),
                                 query=self.raw_query):
            # a fresh page every time, each empty: a listing without end
            return "%s%s?api-version=%s&$skiptoken=%s&maxresults=%d" % (
                origin, base_path, api, encode_skiptoken("~endless-" + uuid.uuid4().hex), k)
        if self.state.take_fault("vault", self.url_path, kinds=("foreign_nextlink",),
                                 query=self.raw_query):
            origin = self.fake.urls["foreign"]
            if marker is None:
                marker = "~foreign"
        if marker is None:
            return None
        return "%s%s?api-version=%s&$skiptoken=%s&maxresults=%d" % (
            origin, base_path, api, encode_skiptoken(marker), k)

    def list_page(self, objs, path, api, item):
        """One page of a listing of named objects, sorted by name
        case-insensitively; the $skiptoken holds the last name sent.
        objs(after) gives, in that order, the objects after that name
        (None: all); the page takes what it sends and one more."""
        k = self.page_args()
        token = self.params.get("$skiptoken")
        after = decode_skiptoken(token) if token else None
        taken = list(itertools.islice(objs(after), k + 1))
        page, rest = taken[:k], taken[k:]
        marker = None
        if rest or (page and self.state.setting("empty_last_page")):
            marker = page[-1].name.lower()
        self.send_json(200, {"value": [item(c) for c in page],
                             "nextLink": self.next_link(path, api, marker, k)})

    def list_certificates(self, api):
        # names no real vault would list, each as an item with that raw name
        hostile = sorted((HostileName(n) for n in self.state.setting("hostile_names") or ()),
                         key=by_name)

        def certs(after):
            return heapq.merge(self.state.after("certificates", after),
                               (h for h in hostile if after is None or by_name(h) > after),
                               key=by_name)
        self.list_page(certs, "/certificates", api,
                       lambda c: c.item(self.vault) if isinstance(c, HostileName)
                       else self.item(c, c.latest, with_version=False))

    def list_versions(self, versions, path, api, item):
        """One page of a versions listing, oldest first; the $skiptoken
        holds the index of the next version."""
        k = self.page_args()
        token = self.params.get("$skiptoken")
        start = 0
        if token:
            try:
                start = int(decode_skiptoken(token))
            except (TypeError, ValueError):
                raise bad_parameter("The skip token '%s' is invalid." % token)
        versions = list(versions)
        page = versions[start:start + k]
        end = start + len(page)
        marker = None
        if end < len(versions) or (page and self.state.setting("empty_last_page")):
            marker = str(end)
        self.send_json(200, {"value": [item(v) for v in page],
                             "nextLink": self.next_link(path, api, marker, k)})

    def item(self, cert, ver, with_version):
        cid = "%s/certificates/%s" % (self.vault, cert.name)
        if with_version:
            cid += "/" + ver.version
        item = {"id": cid, "x5t": ver.x5t, "attributes": attributes(ver), "subject": ""}
        if cert.tags:
            item["tags"] = dict(cert.tags)
        pad = {n.lower(): p for n, p in
               (self.state.setting("padded_items") or {}).items()}.get(cert.name.lower())
        if pad:
            # fields past what Key Vault ever sends, in list items only
            if "x5t" in pad:
                item["x5t"] = "A" * int(pad["x5t"])
            if "tags" in pad:
                item["tags"] = dict(item.get("tags", {}), pad="x" * int(pad["tags"]))
        return item

    def policy(self, cert):
        key_props = {"exportable": cert.exportable, "kty": cert.kty}
        if cert.kty.startswith("EC"):
            key_props["crv"] = cert.crv
        else:
            key_props["key_size"] = cert.key_size
        key_props["reuse_key"] = False
        sans = {"dns_names": list(cert.dns_names)} if cert.dns_names else {}
        if cert.issuer_name == "Self":
            action = {"trigger": {"lifetime_percentage": 80}, "action": {"action_type": "AutoRenew"}}
        else:
            action = {"trigger": {"lifetime_percentage": 80},
                      "action": {"action_type": "EmailContacts"}}
        created = cert.policy_created or cert.versions[0].created
        return {
            "id": "%s/certificates/%s/policy" % (self.vault, cert.name),
            "key_props": key_props,
            "secret_props": {"contentType": cert.content_type},
            "x509_props": {
                "subject": cert.subject,
                "sans": sans,
                "ekus": list(cert.ekus),
                "key_usage": list(cert.key_usage),
                "validity_months": cert.validity_months,
                "basic_constraints": {"ca": False},
            },
            "lifetime_actions": [action],
            "issuer": {"name": cert.issuer_name},
            "attributes": {"enabled": True, "created": created, "updated": created},
        }

    def cer(self, cert, ver):
        """The version's cer, unless the malformed_cer setting spoils it:
        {"name": "base64"} is not base64, {"name": "der"} is base64 of bytes
        that are not a certificate."""
        spoil = {n.lower(): m for n, m in
                 (self.state.setting("malformed_cer") or {}).items()}.get(cert.name.lower())
        if spoil == "base64":
            return "MIIB!!not*base64" + ver.cer[16:]
        if spoil == "der":
            return base64.b64encode(b"this is not a DER certificate").decode("ascii")
        return ver.cer

    def bundle(self, cert, ver):
        base = self.vault
        body = {
            "id": "%s/certificates/%s/%s" % (base, cert.name, ver.version),
            "kid": "%s/keys/%s/%s" % (base, cert.name, ver.version),
            "sid": "%s/secrets/%s/%s" % (base, cert.name, ver.version),
            "x5t": ver.x5t,
            "cer": self.cer(cert, ver),
            "attributes": attributes(ver, recovery=True),
            "policy": self.policy(cert),
        }
        if cert.tags:
            body["tags"] = dict(cert.tags)
        body["pending"] = {"id": "%s/certificates/%s/pending" % (base, cert.name)}
        return body

    # --- secrets and keys -----------------------------------------------------

    def secrets_or_keys(self, kind, rest, principal, api):
        """GET /{kind}, /{kind}/{name}[/], /{kind}/{name}/{version} and
        /{kind}/{name}/versions, for kind "secrets" or "keys"; each
        certificate's secret and key are served beside the others."""
        noun = kind[:-1]
        if kind == "secrets":
            list_action, get_action = SECRET_LIST, SECRET_GET
            item, bundle = self.secret_item, self.secret_bundle
        else:
            list_action = get_action = KEY_READ
            item, bundle = self.key_item, self.key_bundle
        if not rest or rest == [""]:
            self.authorize(principal, list_action, "/" + kind)
            def objs(after):
                return heapq.merge(self.state.after(kind, after),
                                   self.state.after("certificates", after), key=by_name)
            return self.list_page(objs, "/" + kind, api, lambda o: item(o, o.latest, False))
        if len(rest) > 3 or (len(rest) == 3 and rest[2] != ""):
            self.authorize(principal, get_action, "/%s/%s" % (kind, rest[0]))
            raise self.no_route()
        name = rest[0]
        sub = rest[1] if len(rest) > 1 else ""
        listing = sub.lower() == "versions"
        self.authorize(principal, list_action if listing else get_action,
                       "/%s/%s" % (kind, name))
        obj = None
        if name:
            obj = self.state.get(kind, name) or self.state.get("certificates", name)
        if obj is None or not obj.versions:
            raise self.not_found(name if not sub else "%s/%s" % (name, sub), noun)
        if listing:
            return self.list_versions(obj.versions, "/%s/%s/versions" % (kind, obj.name), api,
                                      lambda v: item(obj, v, True))
        ver = obj.latest if sub == "" else obj.find_version(sub)
        if ver is None:
            raise self.not_found("%s/%s" % (name, sub), noun)
        # A disabled secret's value is refused; a disabled key's public
        # half is not (200, "enabled": false): KeyDisabled is for the key's
        # operations (sign, decrypt, unwrapKey).
        if not ver.enabled and kind == "secrets":
            raise KVError(403, "Forbidden", "Operation get is not allowed on a disabled %s."
                          % noun, inner=noun.capitalize() + "Disabled")
        self.send_json(200, bundle(obj, ver))

    def object_id(self, kind, obj, ver, with_version):
        oid = "%s/%s/%s" % (self.vault, kind, obj.name)
        return oid + "/" + ver.version if with_version else oid

    def secret_item(self, obj, ver, with_version):
        """SecretItem: id, attributes, tags, contentType, managed (only true)."""
        managed = isinstance(obj, Certificate)
        tags = obj.tags if managed else ver.tags
        content_type = obj.content_type if managed else ver.content_type
        item = {"id": self.object_id("secrets", obj, ver, with_version),
                "attributes": attributes(ver, recovery=True)}
        if tags:
            item["tags"] = dict(tags)
        if content_type is not None:
            item["contentType"] = content_type
        if managed:
            item["managed"] = True
        return item

    def secret_bundle(self, obj, ver):
        if isinstance(obj, Certificate):
            return self.certificate_secret(obj, ver)
        body = {"value": ver.value}
        if ver.content_type is not None:
            body["contentType"] = ver.content_type
        body["id"] = self.object_id("secrets", obj, ver, True)
        body["attributes"] = attributes(ver, recovery=True)
        if ver.tags:
            body["tags"] = dict(ver.tags)
        return body

    def key_parts(self, obj, ver):
        """(private key, kty, key_ops, tags, attributes) of a key version,
        or of the key behind a certificate version."""
        attrs = attributes(ver, recovery=True)
        if isinstance(obj, Certificate):
            return ver.key, obj.kty, default_key_ops(obj.kty), obj.tags, attrs
        attrs["exportable"] = ver.exportable
        return ver.key, ver.kty, ver.key_ops, ver.tags, attrs

    def key_item(self, obj, ver, with_version):
        """KeyItem: kid, attributes, tags, managed (only true)."""
        _, _, _, tags, attrs = self.key_parts(obj, ver)
        item = {"kid": self.object_id("keys", obj, ver, with_version), "attributes": attrs}
        if tags:
            item["tags"] = dict(tags)
        if isinstance(obj, Certificate):
            item["managed"] = True
        return item

    def key_bundle(self, obj, ver):
        """KeyBundle: the public JsonWebKey, then the item's attributes,
        tags and managed."""
        key, kty, key_ops, _, _ = self.key_parts(obj, ver)
        item = self.key_item(obj, ver, True)
        body = {"key": jwk(key, kty, key_ops, item.pop("kid"))}
        body.update(item)
        return body

    def certificate_secret(self, cert, ver):
        """The SecretBundle of a certificate version (S3): its PEM or PKCS#12."""
        if cert.content_type == PFX_TYPE:
            value = ver.pfx_value(cert.exportable)
        else:
            value = ver.pem_value(cert.exportable)
        spoil = {n.lower(): m for n, m in
                 (self.state.setting("malformed_secret") or {}).items()}.get(cert.name.lower())
        if spoil:
            # well-formed JSON around a value no parser can use
            value = "-----BEGIN PRIVATE KEY-----\nnot*base64\n-----END PRIVATE KEY-----\n"
        bomb = {n.lower(): c for n, c in
                (self.state.setting("pkcs12_bomb") or {}).items()}.get(cert.name.lower())
        if bomb:
            # the version's key and leaf, then bomb encrypted ContentInfos
            value = ver.bomb_value(int(bomb))
        body = {
            "value": value,
            "contentType": cert.content_type,
            "id": self.object_id("secrets", cert, ver, True),
            "managed": True,
            "attributes": attributes(ver, recovery=True),
        }
        if cert.tags:
            body["tags"] = dict(cert.tags)
        body["kid"] = self.object_id("keys", cert, ver, True)
        return body
