"""Self-check of the fake Azure over real HTTP(S).

    /usr/bin/python3 -m pytest tests/fakeazure -q
"""

import base64
import calendar
import hashlib
import http.client
import json
import os
import subprocess
import sys
import time
import urllib.parse
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from client import FakeAzure  # noqa: E402
import jwtutil  # noqa: E402

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    f = FakeAzure(tmp_path_factory.mktemp("fakeazure"), bulk=60)
    f.start()
    yield f
    f.stop()
    assert "Traceback" not in f.output(), f.output()


@pytest.fixture(scope="module")
def token(fake):
    return fake.token("secret")


@pytest.fixture(autouse=True)
def no_faults(fake):
    fake.clear_faults()
    fake.settings(empty_last_page=False, hostile_names=[], malformed_cer={})
    yield
    fake.clear_faults()
    fake.settings(hostile_names=[], malformed_cer={})


def post_token(fake, form, tenant=None, headers=None):
    url = "%s/%s/oauth2/v2.0/token" % (fake.info["authority"], tenant or fake.info["tenant"])
    h = dict(FORM)
    h.update(headers or {})
    status, _, body = fake.request(url, "POST", urllib.parse.urlencode(form).encode(), h)
    return status, json.loads(body)


def list_all(fake, token, path="/certificates", maxresults=None):
    """Follow nextLinks; returns (items, pages)."""
    url = fake.info["vault_url"] + path + "?api-version=7.4"
    if maxresults:
        url += "&maxresults=%d" % maxresults
    items, pages = [], []
    while url:
        status, _, body = fake.request(url, headers={"Authorization": "Bearer " + token})
        assert status == 200, body
        page = json.loads(body)
        pages.append(page)
        assert "nextLink" in page
        items += page["value"]
        url = page["nextLink"]
        if url:
            assert url.startswith(fake.info["vault_url"] + path + "?api-version=7.4&$skiptoken=")
    return items, pages


def key_matches(key, cert):
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    return (key.public_key().public_bytes(serialization.Encoding.DER, pub)
            == cert.public_key().public_bytes(serialization.Encoding.DER, pub))


def cn(cert):
    return cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value


def split_pem(text):
    blocks, cur = [], []
    for line in text.splitlines(keepends=True):
        cur.append(line)
        if line.startswith("-----END "):
            blocks.append("".join(cur))
            cur = []
    assert not "".join(cur).strip()
    return blocks


# --- Entra ID -------------------------------------------------------------------

def test_discovery_and_unknown_tenant(fake):
    a, t = fake.info["authority"], fake.info["tenant"]
    status, _, body = fake.request("%s/%s/v2.0/.well-known/openid-configuration" % (a, t))
    assert status == 200
    doc = json.loads(body)
    assert doc["token_endpoint"] == fake.info["token_endpoint"]
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
    status, _, body = fake.request("%s/%s/v2.0/.well-known/openid-configuration"
                                   % (a, uuid.uuid4()))
    assert status == 400 and json.loads(body)["error_codes"] == [90002]
    status, err = post_token(fake, {"client_id": fake.info["apps"]["secret"]["client_id"]},
                             tenant=str(uuid.uuid4()))
    assert status == 400 and err["error"] == "invalid_request" and err["error_codes"] == [90002]


def test_secret_token_shape(fake):
    app = fake.info["apps"]["secret"]
    status, tok = post_token(fake, {"client_id": app["client_id"], "client_secret": app["secret"],
                                    "grant_type": "client_credentials",
                                    "scope": "https://vault.azure.net/.default"})
    assert status == 200
    assert tok["token_type"] == "Bearer"
    assert isinstance(tok["expires_in"], int) and isinstance(tok["ext_expires_in"], int)
    assert tok["access_token"].startswith("eyJ")
    with open(app["secret_file"]) as f:
        assert f.read() == app["secret"]
    assert os.stat(app["secret_file"]).st_mode & 0o777 == 0o600


def test_basic_auth_secret(fake):
    app = fake.info["apps"]["secret"]
    basic = base64.b64encode(("%s:%s" % (urllib.parse.quote(app["client_id"]),
                                         urllib.parse.quote(app["secret"]))).encode()).decode()
    status, tok = post_token(fake, {"grant_type": "client_credentials",
                                    "scope": "https://vault.azure.net/.default"},
                             headers={"Authorization": "Basic " + basic})
    assert status == 200, tok


def test_token_errors(fake):
    app = fake.info["apps"]["secret"]
    base = {"client_id": app["client_id"], "grant_type": "client_credentials",
            "scope": "https://vault.azure.net/.default"}
    status, err = post_token(fake, dict(base, client_secret="wrong"))
    assert status == 401 and err["error"] == "invalid_client" and err["error_codes"] == [7000215]
    assert err["error_description"].startswith("AADSTS7000215: ")
    assert "\r\nTrace ID: " in err["error_description"]
    assert "\r\nCorrelation ID: " in err["error_description"]
    assert "\r\nTimestamp: " in err["error_description"]
    for k in ("timestamp", "trace_id", "correlation_id", "error_uri"):
        assert k in err
    status, err = post_token(fake, dict(base, client_id=str(uuid.uuid4()), client_secret="x"))
    assert status == 400 and err["error"] == "unauthorized_client"
    assert err["error_codes"] == [700016]
    status, err = post_token(fake, base)
    assert status == 401 and err["error_codes"] == [7000218]
    status, err = post_token(fake, dict(base, client_secret=app["secret"],
                                        scope="https://vault.azure.net"))
    assert status == 400 and err["error_codes"] == [70011]


def assertion(fake, key, cert, alg="PS256", thumb="x5t#S256", aud=None, exp_in=600,
              std_b64=False, iss=None):
    cid = fake.info["apps"]["cert"]["client_id"]
    der = cert.public_bytes(serialization.Encoding.DER)
    if thumb == "x5t#S256":
        digest = hashlib.sha256(der).digest()
    else:
        digest = hashlib.sha1(der).digest()
    if std_b64:
        tp = base64.b64encode(digest).decode()
    else:
        tp = jwtutil.b64url_encode(digest)
    now = int(time.time())
    header = {"alg": alg, "typ": "JWT", thumb: tp}
    claims = {"aud": aud or fake.info["token_endpoint"], "iss": iss or cid, "sub": iss or cid,
              "jti": str(uuid.uuid4()), "nbf": now, "iat": now, "exp": now + exp_in}
    return jwtutil.sign(header, claims, key)


def cert_app_key(fake):
    with open(fake.info["apps"]["cert"]["cert_file"], "rb") as f:
        data = f.read()
    key = serialization.load_pem_private_key(data, None)
    cert = x509.load_pem_x509_certificate(data[data.index(b"-----BEGIN CERTIFICATE"):])
    return key, cert


def assertion_token(fake, jwt):
    return post_token(fake, {
        "client_id": fake.info["apps"]["cert"]["client_id"], "grant_type": "client_credentials",
        "scope": "https://vault.azure.net/.default",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": jwt})


def test_client_assertion(fake):
    key, cert = cert_app_key(fake)
    for alg, thumb, std in (("PS256", "x5t#S256", False), ("RS256", "x5t", False),
                            ("PS256", "x5t#S256", True)):
        status, tok = assertion_token(fake, assertion(fake, key, cert, alg, thumb, std_b64=std))
        assert status == 200, (alg, thumb, tok)
        st, _ = fake.vault_get("/certificates", tok["access_token"])
        assert st == 200

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    status, err = assertion_token(fake, assertion(fake, other, cert))
    assert status == 401 and err["error"] == "invalid_client" and err["error_codes"] == [700027]
    status, err = assertion_token(fake, assertion(fake, key, cert, exp_in=-300))
    assert status == 401 and err["error_codes"] == [700024]
    status, err = assertion_token(fake, assertion(fake, key, cert, exp_in=3600))
    assert status == 401 and err["error_codes"] == [700024]
    status, err = assertion_token(fake, assertion(fake, key, cert,
                                                  aud="https://login.microsoftonline.com/x"))
    assert status == 401 and err["error"] == "invalid_client"


def test_workload_token(fake):
    app = fake.info["apps"]["workload"]
    with open(app["token_file"]) as f:
        jwt = f.read()
    form = {"client_id": app["client_id"], "grant_type": "client_credentials",
            "scope": "https://vault.azure.net/.default",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"}
    status, tok = post_token(fake, dict(form, client_assertion=jwt))
    assert status == 200, tok
    status, err = post_token(fake, dict(form, client_assertion=jwt[:-4] + "AAAA"))
    assert status == 400 and err["error_codes"] == [70021]


# --- managed identity ------------------------------------------------------------

def test_imds(fake):
    url = fake.info["imds_url"] + "?api-version=2018-02-01&resource=https://vault.azure.net"
    status, _, body = fake.request(url)
    assert status == 400
    assert json.loads(body) == {"error": "invalid_request",
                                "error_description": "Required metadata header not specified"}
    status, _, body = fake.request(url, headers={"Metadata": "true"})
    assert status == 200
    tok = json.loads(body)
    for k in ("access_token", "client_id", "expires_in", "expires_on", "ext_expires_in",
              "not_before", "resource", "token_type"):
        assert isinstance(tok[k], str), k
    assert tok["client_id"] == fake.info["identities"]["system"]["client_id"]
    assert fake.vault_get("/certificates", tok["access_token"])[0] == 200
    user = fake.info["identities"]["user"]
    status, _, body = fake.request(url + "&msi_res_id=" + urllib.parse.quote(user["msi_res_id"]),
                                   headers={"Metadata": "true"})
    assert status == 200 and json.loads(body)["client_id"] == user["client_id"]
    status, _, body = fake.request(url + "&client_id=" + str(uuid.uuid4()),
                                   headers={"Metadata": "true"})
    assert status == 400 and json.loads(body)["error_description"] == "Identity not found"
    status, _, body = fake.request(url + "/.default", headers={"Metadata": "true"})
    assert status == 400 and json.loads(body)["error"] == "invalid_resource"


def test_appservice(fake):
    url = fake.info["identity_endpoint"] + "?api-version=2019-08-01&resource=https://vault.azure.net"
    status, _, _ = fake.request(url)
    assert status in (400, 401)
    status, _, _ = fake.request(url, headers={"X-IDENTITY-HEADER": "wrong"})
    assert status == 401
    status, _, body = fake.request(url, headers={"X-IDENTITY-HEADER": fake.info["identity_header"]})
    assert status == 200
    tok = json.loads(body)
    assert isinstance(tok["expires_on"], str) and "expires_in" not in tok
    assert tok["token_type"] == "Bearer"
    assert fake.vault_get("/certificates", tok["access_token"])[0] == 200


def test_arc(fake):
    url = fake.info["arc_identity_endpoint"] + "?api-version=2020-06-01&resource=" \
        "https://vault.azure.net"
    status, headers, _ = fake.request(url, headers={"Metadata": "true"})
    assert status == 401
    scheme, _, path = headers["WWW-Authenticate"].partition(" realm=")
    assert scheme == "Basic"
    assert os.path.dirname(path) == fake.info["arc_token_dir"] and path.endswith(".key")
    with open(path) as f:
        key = f.read()
    status, _, _ = fake.request(url, headers={"Metadata": "true", "Authorization": "Basic x"})
    assert status == 401
    status, _, body = fake.request(url, headers={"Metadata": "true",
                                                 "Authorization": "Basic " + key})
    assert status == 200
    tok = json.loads(body)
    assert isinstance(tok["expires_in"], str)
    assert fake.vault_get("/certificates", tok["access_token"])[0] == 200
    status, _, _ = fake.request(url, headers={"Metadata": "true",
                                              "Authorization": "Basic " + key})
    assert status == 401, "a key is good once"
    assert any(e["server"] == "arc" for e in fake.log())


def test_imds_410_fault_and_credentials(fake):
    fake.fault(server="imds", kind="410", count=1)
    url = fake.info["imds_url"] + "?api-version=2018-02-01&resource=https://vault.azure.net"
    status, _, _ = fake.request(url, headers={"Metadata": "true"})
    assert status == 410
    status, _, body = fake.request(url, headers={"Metadata": "true"})
    assert status == 200
    assert json.loads(body)["access_token"] in fake.credentials()["tokens"]


# --- Key Vault ---------------------------------------------------------------------

def test_challenge(fake):
    status, headers, body = fake.request(fake.info["vault_url"] + "/certificates?api-version=7.4")
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Bearer authorization="%s/%s", resource="%s"' % (
        fake.info["authority"], fake.info["tenant"], "https://vault.azure.net")
    assert headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(body) == {"error": {"code": "Unauthorized", "message":
                                          "AKV10000: Request is missing a Bearer or PoP token."}}
    status, _ = fake.vault_get("/certificates", "eyJnot.a.token")
    assert status == 401
    status, _, _ = fake.request(fake.info["vault_url"] + "/certificates")
    assert status == 400


def test_list_all_pages_and_get_each(fake, token):
    items, pages = list_all(fake, token)
    names = [i["id"].rsplit("/", 1)[1] for i in items]
    assert len(pages) >= 3 and all(len(p["value"]) <= 25 for p in pages)
    assert pages[-1]["nextLink"] is None and pages[-1]["value"]
    assert names == sorted(names, key=str.lower)
    for n in ("www", "api", "mail", "WebFrontend", "disabled-cert", "expired-cert",
              "future-cert", "hsm-key", "reversed-chain", "selfsigned", "bulk-000", "bulk-059"):
        assert n in names
    for item in items:
        assert item["subject"] == ""
        assert set(item["attributes"]) == {"enabled", "nbf", "exp", "created", "updated"}
        assert ("tags" in item) == bool(item.get("tags"))
    state = {c["name"]: c for c in fake.state()["certificates"]}
    for name in names:
        status, b = fake.vault_get("/certificates/%s/" % name, token)
        assert status == 200, b
        der = base64.b64decode(b["cer"])
        assert b["x5t"] == jwtutil.b64url_encode(hashlib.sha1(der).digest())
        cert = x509.load_der_x509_certificate(der)
        assert b["attributes"]["nbf"] == calendar.timegm(cert.not_valid_before.utctimetuple())
        assert b["attributes"]["exp"] == calendar.timegm(cert.not_valid_after.utctimetuple())
        assert b["id"].endswith("/certificates/%s/%s" % (name, state[name]["latest"]))
        assert b["sid"] == b["id"].replace("/certificates/", "/secrets/")
        assert b["pending"] == {"id": "%s/certificates/%s/pending" % (fake.info["vault_url"], name)}
        assert "contentType" not in b
        assert b["policy"]["x509_props"]["basic_constraints"] == {"ca": False}
        assert b["attributes"]["recoveryLevel"]


def test_empty_last_page_setting(fake, token):
    fake.settings(empty_last_page=True)
    _, pages = list_all(fake, token)
    assert pages[-1] == {"value": [], "nextLink": None}


def test_case_insensitive_and_versions(fake, token):
    status, b = fake.vault_get("/certificates/WEBFRONTEND", token)
    assert status == 200 and "/certificates/WebFrontend/" in b["id"]
    items, pages = list_all(fake, token, "/certificates/mail/versions", maxresults=2)
    assert len(items) == 3 and len(pages) == 2
    assert all(len(i["id"].rsplit("/", 1)[1]) == 32 for i in items)
    status, latest = fake.vault_get("/certificates/mail", token)
    created = [i["attributes"]["created"] for i in items]
    assert latest["attributes"]["created"] == max(created)
    for i in items:
        v = i["id"].rsplit("/", 1)[1]
        status, b = fake.vault_get("/certificates/mail/" + v, token)
        assert status == 200 and b["id"].endswith(v)
    status, b = fake.vault_get("/certificates/mail/pending", token)
    assert status == 404
    status, b = fake.vault_get("/certificates?maxresults=26", token)
    assert status == 400 and b["error"]["code"] == "BadParameter"


def test_not_found(fake, token):
    status, b = fake.vault_get("/certificates/does-not-exist", token)
    assert status == 404 and b["error"]["code"] == "CertificateNotFound"
    assert "does-not-exist" in b["error"]["message"]
    status, b = fake.vault_get("/secrets/does-not-exist", token)
    assert status == 404 and b["error"]["code"] == "SecretNotFound"


def test_secret_pem(fake, token):
    status, s = fake.vault_get("/secrets/www/", token)
    assert status == 200 and s["contentType"] == "application/x-pem-file" and s["managed"] is True
    blocks = split_pem(s["value"])
    assert blocks[0].startswith("-----BEGIN PRIVATE KEY-----\n")
    assert s["value"].endswith("\n") and "\r" not in s["value"]
    assert all(len(line) <= 64 for line in s["value"].splitlines())
    key = serialization.load_pem_private_key(blocks[0].encode(), None)
    certs = [x509.load_pem_x509_certificate(b.encode()) for b in blocks[1:]]
    assert len(certs) == 2 and key_matches(key, certs[0])
    assert cn(certs[1]) == "kvfs Test Intermediate CA"
    assert certs[0].issuer == certs[1].subject
    _, b = fake.vault_get("/certificates/www", token)
    assert base64.b64decode(b["cer"]) == certs[0].public_bytes(serialization.Encoding.DER)
    assert b["tags"] == {"env": "prod", "team": "web"}

    status, s = fake.vault_get("/secrets/reversed-chain", token)
    certs = [x509.load_pem_x509_certificate(b.encode()) for b in split_pem(s["value"])[1:]]
    assert [cn(c) for c in certs] == [
        "kvfs Test Root CA", "kvfs Test Intermediate CA", "reversed-chain.kvfs.test"]


def test_secret_pkcs12(fake, token, tmp_path):
    status, s = fake.vault_get("/secrets/api", token)
    assert status == 200 and s["contentType"] == "application/x-pkcs12"
    der = base64.b64decode(s["value"])
    key, cert, extra = pkcs12.load_key_and_certificates(der, None)
    assert key_matches(key, cert) and len(extra) == 1
    p = tmp_path / "api.pfx"
    p.write_bytes(der)
    r = subprocess.run(["openssl", "pkcs12", "-in", str(p), "-passin", "pass:", "-info",
                        "-noout"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "MAC: sha1, Iteration 2000" in r.stdout + r.stderr
    assert "pbeWithSHA1And3-KeyTripleDES-CBC, Iteration 2000" in r.stdout + r.stderr

    status, s = fake.vault_get("/secrets/hsm-key", token)
    key, cert, extra = pkcs12.load_key_and_certificates(base64.b64decode(s["value"]), None)
    # no key bag: OpenSSL (and cryptography) report the lone certificate among the extras
    assert key is None and cert is None and cn(extra[0]) == "hsm-key.kvfs.test"


def test_disabled_and_rbac(fake, token):
    status, b = fake.vault_get("/certificates/disabled-cert", token)
    assert status == 200 and b["attributes"]["enabled"] is False
    status, b = fake.vault_get("/secrets/disabled-cert", token)
    assert status == 403 and b == {"error": {
        "code": "Forbidden", "message": "Operation get is not allowed on a disabled secret.",
        "innererror": {"code": "SecretDisabled"}}}
    reader = fake.token("reader")
    assert fake.vault_get("/certificates/www", reader)[0] == 200
    status, b = fake.vault_get("/secrets/www", reader)
    assert status == 403 and b["error"]["innererror"]["code"] == "ForbiddenByRbac"
    nolist = fake.token("nolist")
    status, b = fake.vault_get("/certificates", nolist)
    assert status == 403 and b["error"]["innererror"]["code"] == "ForbiddenByRbac"


# --- control and faults ----------------------------------------------------------------

def test_rotate_disable_enable(fake, token):
    before = fake.vault_get("/certificates/www", token)[1]
    r = fake.rotate("www")
    after = fake.vault_get("/certificates/www", token)[1]
    assert after["id"].endswith("/" + r["version"]) and after["id"] != before["id"]
    assert after["attributes"]["updated"] > before["attributes"]["updated"]
    s = fake.vault_get("/secrets/www", token)[1]
    blocks = split_pem(s["value"])
    key = serialization.load_pem_private_key(blocks[0].encode(), None)
    assert key_matches(key, x509.load_pem_x509_certificate(blocks[1].encode()))
    assert base64.b64decode(after["cer"]) == x509.load_pem_x509_certificate(
        blocks[1].encode()).public_bytes(serialization.Encoding.DER)
    fake.disable("www")
    assert fake.vault_get("/secrets/www", token)[0] == 403
    fake.enable("www")
    assert fake.vault_get("/secrets/www", token)[0] == 200
    fake.create("added-cert", kty="EC")
    assert fake.vault_get("/certificates/added-cert", token)[0] == 200
    fake.delete("added-cert")
    assert fake.vault_get("/certificates/added-cert", token)[0] == 404


def test_set_tags(fake, token):
    def listed(name):
        items, _ = list_all(fake, token)
        return next(i for i in items if i["id"].rsplit("/", 1)[1] == name)

    before = fake.vault_get("/certificates/api", token)[1]
    assert "tags" not in before and "tags" not in listed("api")
    fake.set_tags("api", {"team": "web"})
    after = fake.vault_get("/certificates/api", token)[1]
    assert after["tags"] == {"team": "web"} and after["id"] == before["id"]
    assert after["attributes"]["updated"] > before["attributes"]["updated"]
    item = listed("api")
    assert item["tags"] == {"team": "web"}
    assert item["attributes"]["updated"] == after["attributes"]["updated"]
    fake.set_tags("api", {})
    assert "tags" not in fake.vault_get("/certificates/api", token)[1]
    assert "tags" not in listed("api")


def test_fault_429(fake, token):
    fake.fault(kind="429", count=1)
    fake.fault(kind="429", count=1, retry_after=2)
    url = fake.info["vault_url"] + "/certificates/www?api-version=7.4"
    auth = {"Authorization": "Bearer " + token}
    status, h, body = fake.request(url, headers=auth)
    assert status == 429 and h.get("Retry-After") is None
    assert json.loads(body)["error"]["code"] == "Throttled"
    status, h, body = fake.request(url, headers=auth)
    assert status == 429 and h["Retry-After"] == "2"
    assert fake.request(url, headers=auth)[0] == 200
    fake.fault(kind="503", seconds=60, path="/secrets/")
    assert fake.vault_get("/certificates/www", token)[0] == 200
    assert fake.vault_get("/secrets/www", token)[0] == 503


def test_throttle_budget(fake, token):
    fake.throttle(requests=3, window=1.5)
    try:
        statuses = [fake.vault_get("/certificates/www", token)[0] for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        status, h, body = fake.request(fake.info["vault_url"] + "/certificates?api-version=7.4",
                                       headers={"Authorization": "Bearer " + token})
        assert status == 429 and h.get("Retry-After") is None
        assert json.loads(body)["error"]["code"] == "Throttled"
        time.sleep(1.6)
        assert fake.vault_get("/certificates/www", token)[0] == 200
        fake.throttle(requests=1, window=60, retry_after=7)
        assert fake.vault_get("/certificates/www", token)[0] == 200
        status, h, _ = fake.request(fake.info["vault_url"] + "/certificates/www?api-version=7.4",
                                    headers={"Authorization": "Bearer " + token})
        assert status == 429 and h["Retry-After"] == "7"
    finally:
        fake.throttle(None)
    assert fake.vault_get("/certificates/www", token)[0] == 200


def https_conn(fake):
    host, port = fake.info["vault_url"].split("//")[1].split(":")
    return http.client.HTTPSConnection(host, int(port), context=fake.ssl_context(), timeout=10)


def test_fault_reset_truncate_malformed(fake, token):
    auth = {"Authorization": "Bearer " + token}
    path = "/certificates/www?api-version=7.4"
    fake.fault(kind="reset")
    c = https_conn(fake)
    c.request("GET", path, headers=auth)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected, OSError)):
        c.getresponse().read()
    c.close()
    fake.fault(kind="truncate")
    c = https_conn(fake)
    c.request("GET", path, headers=auth)
    with pytest.raises(http.client.IncompleteRead):
        c.getresponse().read()
    c.close()
    fake.fault(kind="malformed")
    status, body = fake.vault_get("/certificates/www", token)
    assert status == 200 and body is None
    # keep-alive still works on a fresh connection after the faults
    c = https_conn(fake)
    for _ in range(3):
        c.request("GET", path, headers=auth)
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read())["x5t"]
    c.close()


def test_foreign_nextlink_and_redirect(fake, token):
    fake.reset_foreign()
    fake.fault(kind="foreign_nextlink")
    status, page = fake.vault_get("/certificates?maxresults=5", token)
    assert page["nextLink"].startswith(fake.info["foreign_url"] + "/certificates?")
    status, _, _ = fake.request(page["nextLink"], headers={"Authorization": "Bearer " + token})
    assert status == 200
    assert fake.foreign()[-1]["auth"] is True
    fake.fault(kind="redirect")
    c = https_conn(fake)
    c.request("GET", "/certificates/www?api-version=7.4",
              headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    r.read()
    assert r.status == 302 and r.getheader("Location").startswith(fake.info["foreign_url"])
    c.close()


def test_fault_huge(fake, token):
    fake.fault(kind="huge", size_mb=3, path="^/certificates/www$")
    c = https_conn(fake)
    c.request("GET", "/certificates/www?api-version=7.4",
              headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Length") is None
    assert r.getheader("Transfer-Encoding") == "chunked"
    body = r.read()
    assert len(body) == 3 << 20 and body.startswith(b'{"value":[')
    c.close()
    assert fake.vault_get("/certificates/www", token)[0] == 200  # used up


def test_fault_stall(fake, token):
    fake.reset_log()
    fake.fault(kind="stall", path="^/certificates/www$")
    c = https_conn(fake)
    c.timeout = 1
    c.request("GET", "/certificates/www?api-version=7.4",
              headers={"Authorization": "Bearer " + token})
    c.sock.settimeout(1)
    t0 = time.monotonic()
    with pytest.raises((TimeoutError, OSError)):
        c.getresponse()
    assert 0.9 < time.monotonic() - t0 < 5
    c.close()
    # the client went away: the fake lets go and logs it without a status
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        entries = [e for e in fake.log() if e["path"] == "/certificates/www"]
        if entries:
            break
        time.sleep(0.1)
    assert entries and entries[0]["status"] == 0
    assert fake.vault_get("/certificates/www", token)[0] == 200


def test_fault_probability_and_query(fake, token):
    fake.fault(kind="503", seconds=60, p=0.3, seed=7, path="^/certificates/www$")
    got = [fake.vault_get("/certificates/www", token)[0] for _ in range(40)]
    assert set(got) == {200, 503} and 4 <= got.count(503) <= 24
    fake.clear_faults()
    # the same seed draws the same sequence
    fake.fault(kind="503", seconds=60, p=0.3, seed=7, path="^/certificates/www$")
    assert [fake.vault_get("/certificates/www", token)[0] for _ in range(40)] == got
    fake.clear_faults()
    # query: only the pages after the first
    fake.fault(kind="503", seconds=60, path="^/certificates$", query="skiptoken")
    status, page = fake.vault_get("/certificates?maxresults=5", token)
    assert status == 200
    status, _, _ = fake.request(page["nextLink"], headers={"Authorization": "Bearer " + token})
    assert status == 503


def test_fault_nextlink_loop(fake, token):
    fake.fault(kind="nextlink_loop", path="^/certificates$", query="skiptoken")
    auth = {"Authorization": "Bearer " + token}
    status, page1 = fake.vault_get("/certificates?maxresults=5", token)
    status, _, body = fake.request(page1["nextLink"], headers=auth)
    page2 = json.loads(body)
    assert page2["nextLink"] == "%s/certificates?api-version=7.4&maxresults=5" % (
        fake.info["vault_url"])
    status, _, body = fake.request(page2["nextLink"], headers=auth)
    assert json.loads(body)["nextLink"] == page1["nextLink"]  # round and round


def test_fault_nextlink_endless(fake, token):
    fake.fault(kind="nextlink_endless", seconds=60, path="^/certificates$")
    auth = {"Authorization": "Bearer " + token}
    status, page = fake.vault_get("/certificates?maxresults=5", token)
    seen = set()
    for _ in range(5):
        link = page["nextLink"]
        assert link.startswith(fake.info["vault_url"] + "/certificates?") and link not in seen
        seen.add(link)
        status, _, body = fake.request(link, headers=auth)
        page = json.loads(body)
        assert status == 200 and page["value"] == []


def test_hostile_names_and_malformed_cer(fake, token):
    hostile = ["..", "a%2Fb", "a/b", "x" * 128]
    fake.settings(hostile_names=hostile)
    items, _ = list_all(fake, token, maxresults=7)
    ids = [i["id"] for i in items]
    for name in hostile:
        assert "%s/certificates/%s" % (fake.info["vault_url"], name) in ids
    assert len(items) == len(fake.state()["certificates"]) + len(hostile)
    fake.settings(hostile_names=[], malformed_cer={"www": "base64", "API": "der"})
    _, www = fake.vault_get("/certificates/www", token)
    with pytest.raises(ValueError):
        base64.b64decode(www["cer"], validate=True)
    _, api = fake.vault_get("/certificates/api", token)
    der = base64.b64decode(api["cer"], validate=True)
    with pytest.raises(ValueError):
        x509.load_der_x509_certificate(der)
    _, mail = fake.vault_get("/certificates/mail", token)
    x509.load_der_x509_certificate(base64.b64decode(mail["cer"]))
    fake.settings(malformed_cer={})
    _, www = fake.vault_get("/certificates/www", token)
    x509.load_der_x509_certificate(base64.b64decode(www["cer"]))


def test_log_and_revoke(fake):
    fake.reset_log()
    tok = fake.token("secret")
    fake.vault_get("/certificates/www", tok)
    log = fake.log()
    assert [(e["server"], e["status"], e["auth"]) for e in log] == [
        ("login", 200, False), ("vault", 200, True)]
    assert log[1]["path"] == "/certificates/www" and "api-version=7.4" in log[1]["query"]
    fake.revoke_tokens()
    assert fake.vault_get("/certificates/www", tok)[0] == 401


def test_concurrent_keepalive(fake):
    import threading
    errors = []
    token = fake.token("secret")

    def worker():
        try:
            c = https_conn(fake)
            for name in ("www", "api", "mail", "selfsigned", "bulk-007"):
                c.request("GET", "/secrets/%s?api-version=7.4" % name,
                          headers={"Authorization": "Bearer " + token})
                r = c.getresponse()
                assert r.status == 200 and json.loads(r.read())["value"]
            c.close()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_short_token_lifetime(fake):
    fake.set_token_lifetime(1)
    try:
        tok = fake.token("secret")
        assert fake.vault_get("/certificates/www", tok)[0] == 200
        time.sleep(1.2)
        assert fake.vault_get("/certificates/www", tok)[0] == 401
    finally:
        fake.set_token_lifetime(3599)


def test_log_holds_a_request_once_its_answer_is_out():
    """A client that has its answer finds the request in the log, however
    late the handler's thread runs after sending it."""
    import threading
    import httpbase

    class State:
        def __init__(self):
            self.entries = []

        def take_fault(self, *args, **kwargs):
            return None

        def record(self, entry):
            self.entries.append(entry)

    class Fake:
        state = State()

    checked = threading.Event()

    class Handler(httpbase.BaseHandler):
        def route(self):
            self.send_json(200, {"ok": True})
            # the thread is descheduled here until the client has looked
            checked.wait(10)

    server = httpbase.FakeServer(("127.0.0.1", 0), Handler, Fake(), "vault")
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        c = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        c.request("GET", "/x?api-version=7.4")
        r = c.getresponse()
        assert r.status == 200 and json.loads(r.read()) == {"ok": True}
        seen = [(e["server"], e["path"], e["status"]) for e in Fake.state.entries]
        checked.set()
        assert seen == [("vault", "/x", 200)]
        c.close()
    finally:
        checked.set()
        server.shutdown()
        server.server_close()


# --- secrets and keys -------------------------------------------------------------------

@pytest.fixture
def tok(fake):
    """A token of the secret app (the module's one is revoked on the way)."""
    return fake.token("secret")


SECRET_ATTRS = {"enabled", "nbf", "exp", "created", "updated", "recoveryLevel",
                "recoverableDays"}


def item_name(item, field="id"):
    return item[field].split("/")[4]


def vault_names(fake, kind):
    """Every name a listing of kind must hold: the objects of their own and
    the certificates, whose secret and key are listed as managed."""
    state = fake.state()
    return sorted([o["name"] for o in state[kind]] + [c["name"] for c in state["certificates"]],
                  key=str.lower)


def test_secrets_listing(fake, tok):
    items, pages = list_all(fake, tok, "/secrets", maxresults=7)
    want = vault_names(fake, "secrets")
    assert [item_name(i) for i in items] == want
    assert len(pages) == -(-len(want) // 7)
    assert pages[-1]["nextLink"] is None
    default, _ = list_all(fake, tok, "/secrets")
    assert default == items
    state = {s["name"]: s for s in fake.state()["secrets"]}
    certs = {c["name"]: c for c in fake.state()["certificates"]}
    for item in items:
        name = item_name(item)
        assert item["id"] == "%s/secrets/%s" % (fake.info["vault_url"], name)
        assert set(item) <= {"id", "attributes", "tags", "contentType", "managed"}
        assert set(item["attributes"]) <= SECRET_ATTRS
        assert item["attributes"]["recoveryLevel"] == "Recoverable+Purgeable"
        if name in certs:
            assert item["managed"] is True
            assert item["contentType"] == certs[name]["content_type"]
            assert item.get("tags", {}) == certs[name]["tags"]
            continue
        s = state[name]
        assert "managed" not in item
        assert item.get("contentType") == s["content_type"]
        assert item.get("tags", {}) == s["tags"] and ("tags" in item) == bool(s["tags"])
        for a in ("enabled", "nbf", "exp", "created", "updated"):
            assert item["attributes"].get(a) == s[a], (name, a)
    seeded = set(fake.info["secrets"])
    assert {"db-password", "app-config", "tagged-secret", "rotated-secret", "disabled-secret",
            "expired-secret", "future-secret", "newline-secret", "big-secret"} <= seeded


def test_secret_bundles(fake, tok):
    now = time.time()
    for name in fake.info["secrets"]:
        s = fake.secret(name)
        latest = s["versions"][-1]
        status, b = fake.vault_get("/secrets/%s/" % name, tok)
        if not s["enabled"]:
            assert status == 403 and b == {"error": {
                "code": "Forbidden", "message": "Operation get is not allowed on a disabled secret.",
                "innererror": {"code": "SecretDisabled"}}}
            continue
        assert status == 200, (name, b)
        assert b["value"] == latest["value"]
        assert b["id"] == "%s/secrets/%s/%s" % (fake.info["vault_url"], name, latest["version"])
        assert b.get("contentType") == latest["content_type"]
        assert b.get("tags", {}) == latest["tags"]
        assert "managed" not in b and "kid" not in b
        assert set(b["attributes"]) <= SECRET_ATTRS
    assert fake.vault_get("/secrets/newline-secret", tok)[1]["value"] == "line one\nline two\n"
    big = fake.vault_get("/secrets/big-secret", tok)[1]["value"]
    assert len(big.encode()) == 25600
    _, b = fake.vault_get("/secrets/expired-secret", tok)
    assert b["attributes"]["exp"] < now and b["value"] == "expired"
    _, b = fake.vault_get("/secrets/future-secret", tok)
    assert b["attributes"]["nbf"] > now and b["value"] == "future"
    _, b = fake.vault_get("/secrets/tagged-secret", tok)
    assert b["tags"] == {"env": "prod", "team": "db"}
    _, b = fake.vault_get("/secrets/APP-CONFIG", tok)
    assert b["contentType"] == "application/json" and "/secrets/app-config/" in b["id"]
    # a certificate's secret is served as before
    _, b = fake.vault_get("/secrets/www", tok)
    assert b["managed"] is True and b["kid"].startswith(fake.info["vault_url"] + "/keys/www/")


def test_secret_versions_and_errors(fake, tok):
    s = fake.secret("rotated-secret")
    assert [v["value"] for v in s["versions"]] == ["rotated-1", "rotated-2", "rotated-3"]
    items, pages = list_all(fake, tok, "/secrets/rotated-secret/versions", maxresults=1)
    assert len(pages) == 3
    assert [i["id"].rsplit("/", 1)[1] for i in items] == [v["version"] for v in s["versions"]]
    assert all(len(i["id"].split("/")) == 6 and "managed" not in i for i in items)
    for v in s["versions"]:
        _, b = fake.vault_get("/secrets/rotated-secret/" + v["version"], tok)
        assert b["value"] == v["value"]
    assert fake.vault_get("/secrets/rotated-secret", tok)[1]["contentType"] == "text/plain"
    # a certificate's secret versions are the certificate's
    items, _ = list_all(fake, tok, "/secrets/mail/versions")
    assert [i["id"].rsplit("/", 1)[1] for i in items] == [
        v["version"] for v in fake.certificate("mail")["versions"]]
    assert all(i["managed"] is True for i in items)
    for path in ("/secrets/no-such-secret", "/secrets/no-such-secret/versions",
                 "/secrets/db-password/" + "0" * 32):
        status, b = fake.vault_get(path, tok)
        assert status == 404 and b["error"]["code"] == "SecretNotFound", path
        assert "was not found in this key vault" in b["error"]["message"]
    status, b = fake.vault_get("/secrets?maxresults=26", tok)
    assert status == 400 and b["error"]["code"] == "BadParameter"


def jwk_public_key(j):
    from cryptography.hazmat.primitives.asymmetric import ec

    def num(s):
        return int.from_bytes(base64.urlsafe_b64decode(s + "=" * (-len(s) % 4)), "big")
    if j["kty"].startswith("EC"):
        curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}[j["crv"]]
        return ec.EllipticCurvePublicNumbers(num(j["x"]), num(j["y"]), curve()).public_key()
    return rsa.RSAPublicNumbers(num(j["e"]), num(j["n"])).public_key()


def spki(pub):
    return pub.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def test_keys_listing(fake, tok):
    items, pages = list_all(fake, tok, "/keys", maxresults=9)
    want = vault_names(fake, "keys")
    assert [item_name(i, "kid") for i in items] == want
    assert len(pages) == -(-len(want) // 9)
    certs = {c["name"] for c in fake.state()["certificates"]}
    state = {k["name"]: k for k in fake.state()["keys"]}
    for item in items:
        name = item_name(item, "kid")
        assert item["kid"] == "%s/keys/%s" % (fake.info["vault_url"], name)
        assert set(item) <= {"kid", "attributes", "tags", "managed"}
        assert set(item["attributes"]) <= SECRET_ATTRS | {"exportable"}
        if name in certs:
            assert item["managed"] is True
        else:
            assert "managed" not in item
            assert item.get("tags", {}) == state[name]["tags"]
            assert item["attributes"]["enabled"] == state[name]["enabled"]
            assert item["attributes"]["exportable"] is False
    assert {"rsa-key", "ec-p256-key", "ec-p384-key", "ec-p521-key", "rotated-key",
            "disabled-key", "hsm-rsa-key", "hsm-ec-key"} <= set(fake.info["keys"])


@pytest.mark.parametrize("name,kty,crv,size", [
    ("rsa-key", "RSA", None, 256), ("ec-p256-key", "EC", "P-256", 32),
    ("ec-p384-key", "EC", "P-384", 48), ("ec-p521-key", "EC", "P-521", 66),
    ("hsm-rsa-key", "RSA-HSM", None, 256), ("hsm-ec-key", "EC-HSM", "P-256", 32)])
def test_key_bundle_and_signature(fake, tok, name, kty, crv, size):
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding
    k = fake.key(name)
    latest = k["versions"][-1]
    status, b = fake.vault_get("/keys/" + name, tok)
    assert status == 200, b
    j = b["key"]
    assert j == latest["jwk"]
    assert j["kid"] == "%s/keys/%s/%s" % (fake.info["vault_url"], name, latest["version"])
    assert j["kty"] == kty and list(j)[:3] == ["kid", "kty", "key_ops"]
    if crv:
        assert j["crv"] == crv and j["key_ops"] == ["sign", "verify"]
        assert len(base64.urlsafe_b64decode(j["x"] + "==")) == size
        assert len(base64.urlsafe_b64decode(j["y"] + "==")) == size
        assert "n" not in j
    else:
        assert j["e"] == "AQAB" and len(base64.urlsafe_b64decode(j["n"] + "==")) == size
        assert "sign" in j["key_ops"] and "x" not in j
    assert "=" not in json.dumps(j)
    assert set(b) <= {"key", "attributes", "tags", "managed"} and "managed" not in b
    pub = jwk_public_key(j)
    assert spki(pub) == spki(serialization.load_pem_public_key(latest["public_pem"].encode()))
    private = serialization.load_pem_private_key(fake.private_key_pem(name).encode(), None)
    assert spki(private.public_key()) == spki(pub)
    data = b"kvfs signs this"
    sig = fake.sign(name, data)
    assert sig["kid"] == j["kid"]
    if crv:
        h = {"P-256": hashes.SHA256, "P-384": hashes.SHA384, "P-521": hashes.SHA512}[crv]
        assert sig["alg"] == {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[crv]
        pub.verify(sig["signature"], data, ec.ECDSA(h()))
    else:
        assert sig["alg"] == "RS256"
        pub.verify(sig["signature"], data, padding.PKCS1v15(), hashes.SHA256())


def test_key_versions_certificate_keys_and_errors(fake, tok):
    k = fake.key("rotated-key")
    assert len(k["versions"]) == 3
    items, pages = list_all(fake, tok, "/keys/rotated-key/versions", maxresults=2)
    assert len(pages) == 2
    assert [i["kid"].rsplit("/", 1)[1] for i in items] == [v["version"] for v in k["versions"]]
    jwks = set()
    for v in k["versions"]:
        _, b = fake.vault_get("/keys/rotated-key/" + v["version"], tok)
        assert b["key"] == v["jwk"]
        jwks.add(b["key"]["x"])
        sig = fake.sign("rotated-key", b"old", version=v["version"])
        assert sig["version"] == v["version"]
    assert len(jwks) == 3
    # a disabled key's public half is served, its attributes say it
    status, b = fake.vault_get("/keys/disabled-key", tok)
    assert status == 200 and b["attributes"]["enabled"] is False
    assert b["key"]["kid"].startswith(fake.info["vault_url"].rstrip("/") + "/keys/disabled-key/")
    status, b = fake.vault_get("/keys/disabled-cert", tok)
    assert status == 200 and b["attributes"]["enabled"] is False
    # a certificate's key: managed, the certificate's public key, its versions
    for name in ("www", "mail", "hsm-key"):
        c = fake.certificate(name)
        status, b = fake.vault_get("/keys/" + name, tok)
        assert status == 200 and b["managed"] is True
        assert b["key"]["kid"].endswith("/keys/%s/%s" % (name, c["latest"]))
        cert = x509.load_der_x509_certificate(base64.b64decode(c["versions"][-1]["cer"]))
        assert spki(jwk_public_key(b["key"])) == spki(cert.public_key())
        assert b["key"]["kty"] == c["kty"]
    items, _ = list_all(fake, tok, "/keys/mail/versions")
    assert len(items) == 3 and all(i["managed"] for i in items)
    for path in ("/keys/no-such-key", "/keys/no-such-key/versions", "/keys/rsa-key/" + "0" * 32):
        status, b = fake.vault_get(path, tok)
        assert status == 404 and b["error"]["code"] == "KeyNotFound", path


def test_secrets_and_keys_rbac(fake, tok):
    reader = fake.token("reader")
    assert fake.vault_get("/certificates", reader)[0] == 200
    for path, action in (("/secrets", "secrets/readMetadata/action"),
                         ("/secrets/db-password/versions", "secrets/readMetadata/action"),
                         ("/secrets/db-password", "secrets/getSecret/action"),
                         ("/keys", "keys/read"), ("/keys/rsa-key", "keys/read")):
        status, b = fake.vault_get(path, reader)
        assert status == 403 and b["error"]["innererror"]["code"] == "ForbiddenByRbac", path
        assert "Action: 'Microsoft.KeyVault/vaults/%s'" % action in b["error"]["message"]
    # the control API takes a collection away from a principal and gives it back
    fake.deny("secret", ["Microsoft.KeyVault/vaults/secrets/readMetadata/action"])
    try:
        assert fake.vault_get("/secrets", tok)[0] == 403
        assert fake.vault_get("/secrets/db-password", tok)[0] == 200
        assert fake.vault_get("/keys", tok)[0] == 200
        assert fake.vault_get("/certificates", tok)[0] == 200
    finally:
        fake.deny("secret")
    assert fake.vault_get("/secrets", tok)[0] == 200
    # an access-policy vault refuses with Forbidden/AccessDenied instead
    fake.deny("secret", ["Microsoft.KeyVault/vaults/secrets/readMetadata/action"], model="policy")
    try:
        status, b = fake.vault_get("/secrets", tok)
        assert status == 403 and b["error"]["code"] == "Forbidden"
        assert b["error"]["innererror"]["code"] == "AccessDenied"
        assert "does not have secrets list permission on key vault" in b["error"]["message"]
        assert fake.vault_get("/secrets/db-password", tok)[0] == 200
    finally:
        fake.deny("secret")
    assert fake.vault_get("/secrets", tok)[0] == 200


def test_control_secrets_and_keys(fake, tok):
    r = fake.create_secret("added-secret", "first", content_type="text/plain", tags={"a": "b"})
    _, b = fake.vault_get("/secrets/added-secret", tok)
    assert b["value"] == "first" and b["id"].endswith("/" + r["version"]) and b["tags"] == {"a": "b"}
    r2 = fake.rotate("added-secret", kind="secrets", value="second")
    _, b = fake.vault_get("/secrets/added-secret", tok)
    assert b["value"] == "second" and b["id"].endswith("/" + r2["version"])
    assert b["attributes"]["created"] > fake.secret("added-secret")["versions"][0]["created"] - 1
    fake.disable_version("added-secret", r["version"], kind="secrets")
    assert fake.vault_get("/secrets/added-secret/" + r["version"], tok)[0] == 403
    fake.disable("added-secret", kind="secrets")
    assert fake.vault_get("/secrets/added-secret", tok)[0] == 403
    fake.enable("added-secret", kind="secrets")
    assert fake.vault_get("/secrets/added-secret", tok)[0] == 200
    fake.delete_version("added-secret", r2["version"], kind="secrets")
    assert fake.vault_get("/secrets/added-secret", tok)[0] == 403   # r is disabled
    fake.delete("added-secret", kind="secrets")
    assert fake.vault_get("/secrets/added-secret", tok)[0] == 404

    for name, kw, size in (("added-rsa", {"kty": "RSA", "key_size": 3072}, 384),
                           ("added-ec", {"kty": "EC", "crv": "P-384"}, 48)):
        fake.create_key(name, **kw)
        _, b = fake.vault_get("/keys/" + name, tok)
        field = "x" if kw["kty"] == "EC" else "n"
        assert len(base64.urlsafe_b64decode(b["key"][field] + "==")) == size
        r = fake.rotate(name, kind="keys")
        _, b2 = fake.vault_get("/keys/" + name, tok)
        assert b2["key"]["kid"].endswith("/" + r["version"]) and b2["key"][field] != b["key"][field]
        assert b2["key"].get("crv") == b["key"].get("crv")
        fake.disable(name, kind="keys")
        status, b = fake.vault_get("/keys/" + name, tok)
        assert status == 200 and b["attributes"]["enabled"] is False
        fake.delete(name, kind="keys")
        assert fake.vault_get("/keys/" + name, tok)[0] == 404

    for create in (lambda: fake.create_secret("www", "x"), lambda: fake.create_key("db-password"),
                   lambda: fake.create("rsa-key")):
        with pytest.raises(Exception) as e:
            create()
        assert ": 409 " in str(e.value)
    names = [c["name"] for c in fake.state()["certificates"]]
    assert "rsa-key" not in names and "db-password" not in names


def test_secrets_empty_last_page_and_faults(fake, tok):
    fake.settings(empty_last_page=True)
    try:
        _, pages = list_all(fake, tok, "/secrets")
        assert pages[-1]["value"] == [] and pages[-2]["value"]
    finally:
        fake.settings(empty_last_page=False)
    fake.fault(kind="503", path="^/keys$")
    assert fake.vault_get("/keys", tok)[0] == 503
    assert fake.vault_get("/keys", tok)[0] == 200


def test_bulk_secrets(fake, tmp_path):
    """--bulk-secrets N: exactly N plain secrets more in the listing, across
    pages, each one GET away; without it (the module's fake) none."""
    assert fake.info["bulk_secrets"] == 0
    assert not [s for s in fake.info["secrets"] if s.startswith("bulk-secret-")]
    n = 260
    with FakeAzure(tmp_path / "bulk", bulk=0, extra_args=["--bulk-secrets", str(n)]) as f:
        tok = f.token("secret")
        items, pages = list_all(f, tok, "/secrets")
        own = [i for i in items if not i.get("managed")]
        bulk = [item_name(i) for i in own if item_name(i).startswith("bulk-secret-")]
        assert bulk == ["bulk-secret-%03d" % i for i in range(n)]
        hand_made = len(f.info["secrets"]) - n
        managed = len(f.info["certificates"])
        assert len(own) == n + hand_made and len(items) == len(own) + managed
        assert len(pages) == -(-len(items) // 25) and pages[-1]["nextLink"] is None
        sizes = set()
        for name in bulk:
            status, b = f.vault_get("/secrets/%s/" % name, tok)
            assert status == 200, b
            assert set(b) == {"value", "id", "attributes"}
            assert b["attributes"]["enabled"] is True
            assert 32 <= len(b["value"]) <= 64
            assert b["value"] == f.secret(name)["versions"][-1]["value"]
            sizes.add(len(b["value"]))
        assert sizes == set(range(32, 65))
        assert len({f.secret(name)["latest"] for name in bulk}) == n
    assert "Traceback" not in f.output(), f.output()
