"""Managed identity endpoints (plain HTTP, one port):

  IMDS          GET /metadata/identity/oauth2/token  (Metadata: true)
  App Service   GET /msi/token                       (X-IDENTITY-HEADER)
  Azure Arc     GET /arc/metadata/identity/oauth2/token
                (Metadata: true; 401 "Basic realm=<key file>", then
                 Authorization: Basic <key file contents>)

IMDS and App Service issue tokens for the VM's system-assigned and one
user-assigned identity, Arc for the system-assigned one only, with every
number as a JSON string (AZURE.md §5, §6.1, §6.2).
"""

import os
import secrets
import time
import uuid

from entra import KNOWN_RESOURCES, mint_token
from httpbase import BaseHandler

IMDS_PATH = "/metadata/identity/oauth2/token"
APPSERVICE_PATH = "/msi/token"
ARC_PATH = "/arc/metadata/identity/oauth2/token"
ARC_API_VERSIONS = ("2019-11-01", "2020-06-01")


class IdentityHandler(BaseHandler):

    def service_name(self):
        path = self.url_path.lower()
        if path.startswith("/msi"):
            return "appservice"
        if path.startswith("/arc"):
            return "arc"
        return "imds"

    def extra_headers(self):
        return {"Server": "IMDS/150.870.65.1325", "x-ms-request-id": self.request_id}

    def fault_body(self, status):
        if self.service_name() == "appservice":
            return {"statusCode": status, "message": "injected fault %d" % status,
                    "correlationId": self.request_id}
        if status == 429:
            return {"error": "too_many_requests",
                    "error_description": "Too many requests were received."}
        return {"error": "unknown", "error_description": "Failed to retrieve token from the "
                                                        "Active directory."}

    def route(self):
        path = self.url_path.rstrip("/") or "/"
        if path == IMDS_PATH:
            return self.imds()
        if path.lower() == APPSERVICE_PATH:
            return self.appservice()
        if path == ARC_PATH:
            return self.arc()
        self.send_json(404, {"error": "not_found",
                             "error_description": "Unknown path %s" % self.url_path})

    # --- shared -------------------------------------------------------------

    def resource_ok(self, resource):
        return resource.rstrip("/") in KNOWN_RESOURCES

    def resource_error(self, resource):
        ts = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
        return {
            "error": "invalid_resource",
            "error_description": "AADSTS50001: The application named %s was not found in the "
                                 "tenant named %s. This can happen if the application has not "
                                 "been installed by the administrator of the tenant or consented "
                                 "to by any user in the tenant. You might have sent your "
                                 "authentication request to the wrong tenant.\r\nTrace ID: %s\r\n"
                                 "Correlation ID: %s\r\nTimestamp: %s"
                                 % (resource, self.fake.tenant, self.request_id,
                                    uuid.uuid4(), ts),
            "error_codes": [50001],
            "timestamp": ts,
            "trace_id": self.request_id,
            "correlation_id": str(uuid.uuid4()),
            "error_uri": "%s/error?code=50001" % self.fake.urls["login"],
        }

    # --- IMDS ---------------------------------------------------------------

    def imds_error(self, description, error="invalid_request", status=400):
        self.send_json(status, {"error": error, "error_description": description})

    def imds(self):
        if self.headers.get("Metadata") != "true":
            return self.imds_error("Required metadata header not specified")
        if self.command != "GET":
            return self.imds_error("Only GET is supported", status=405)
        if not self.params.get("api-version"):
            return self.imds_error("Required query variable 'api-version' is missing")
        resource = self.params.get("resource")
        if not resource:
            return self.imds_error("Required query variable 'resource' is missing")
        selectors = {k: self.params[k] for k in ("client_id", "object_id", "msi_res_id")
                     if self.params.get(k)}
        if len(selectors) > 1:
            return self.imds_error("Only one of client_id, object_id or msi_res_id may be "
                                   "specified")
        principal = self.fake.find_identity(selectors)
        if principal is None:
            return self.imds_error("Identity not found")
        if resource.endswith("/.default") or not self.resource_ok(resource):
            return self.send_json(400, self.resource_error(resource))
        lifetime = self.state.mi_lifetime
        now = int(time.time())
        token = mint_token(self.fake, principal, resource, lifetime)
        self.send_json(200, {
            "access_token": token,
            "client_id": principal["client_id"],
            "expires_in": str(lifetime),
            "expires_on": str(now + lifetime),
            "ext_expires_in": str(lifetime),
            "not_before": str(now),
            "resource": resource,
            "token_type": "Bearer",
        })

    # --- App Service --------------------------------------------------------

    def appservice_error(self, status, message):
        self.send_json(status, {"statusCode": status, "message": message,
                                "correlationId": self.request_id})

    def appservice(self):
        header = self.headers.get("X-IDENTITY-HEADER")
        if header is None:
            return self.appservice_error(400, "Missing the X-IDENTITY-HEADER header.")
        if header != self.fake.identity_header:
            return self.appservice_error(401, "The X-IDENTITY-HEADER header is not valid.")
        api = self.params.get("api-version")
        if api != "2019-08-01":
            return self.appservice_error(400, "The api-version '%s' is not supported; use "
                                              "2019-08-01." % api)
        resource = self.params.get("resource")
        if not resource:
            return self.appservice_error(400, "The 'resource' query parameter is required.")
        selectors = {}
        for k in ("client_id", "principal_id", "object_id", "mi_res_id"):
            if self.params.get(k):
                selectors[{"principal_id": "object_id", "mi_res_id": "msi_res_id"}.get(k, k)] = \
                    self.params[k]
        if len(selectors) > 1:
            return self.appservice_error(400, "Only one identity selector may be specified.")
        principal = self.fake.find_identity(selectors)
        if principal is None:
            return self.appservice_error(400, "Unable to load the proper Managed Identity.")
        if resource.endswith("/.default") or not self.resource_ok(resource):
            return self.send_json(400, self.resource_error(resource))
        lifetime = self.state.mi_lifetime
        now = int(time.time())
        token = mint_token(self.fake, principal, resource, lifetime)
        self.send_json(200, {
            "access_token": token,
            "expires_on": str(now + lifetime),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": principal["client_id"],
        })

    # --- Azure Arc ----------------------------------------------------------

    def arc(self):
        if self.headers.get("Metadata") != "true":
            return self.imds_error("Required metadata header not specified")
        if self.params.get("api-version") not in ARC_API_VERSIONS:
            return self.imds_error("Invalid api-version '%s'" % self.params.get("api-version"))
        resource = self.params.get("resource")
        if not resource:
            return self.imds_error("Required query variable 'resource' is missing")
        if any(self.params.get(k) for k in ("client_id", "object_id", "msi_res_id")):
            return self.imds_error("User assigned identities are not supported on Azure Arc")
        auth = self.headers.get("Authorization")
        if auth is None:
            # A fresh one-time key in the agent's token directory; its
            # path is the challenge's realm.
            key = secrets.token_hex(32)
            path = os.path.join(self.fake.arc_token_dir, secrets.token_hex(8) + ".key")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            with os.fdopen(fd, "w") as f:
                f.write(key)
            with self.state.lock:
                self.state.arc_keys.add(key)
            return self.send_json(401, {"error": "unauthorized_client",
                                        "error_description": "Authorization required"},
                                  {"WWW-Authenticate": "Basic realm=%s" % path})
        key = auth[6:] if auth[:6] == "Basic " else None
        with self.state.lock:
            known = key in self.state.arc_keys
            self.state.arc_keys.discard(key)
        if not known:
            return self.imds_error("The provided secret is not valid", "invalid_client", 401)
        if resource.endswith("/.default") or not self.resource_ok(resource):
            return self.send_json(400, self.resource_error(resource))
        principal = self.fake.principals["mi:system"]
        lifetime = self.state.mi_lifetime
        now = int(time.time())
        token = mint_token(self.fake, principal, resource, lifetime)
        self.send_json(200, {
            "access_token": token,
            "expires_in": str(lifetime),
            "expires_on": str(now + lifetime),
            "ext_expires_in": str(lifetime),
            "not_before": str(now),
            "resource": resource,
            "token_type": "Bearer",
        })
