"""Every credential provider against the fake Azure: each one mounts and
reads, sends what the real service expects (counted in the fake's request
log), fails fast and clearly where it should, and never prints a secret."""

import base64
import json
import os
import uuid

import pytest

import util
from conftest import option_string, run_kvfs, secret_options


def read_cert(m, name="www"):
    with open(m.p("certificates", name, "cert.pem")) as f:
        data = f.read()
    assert data.startswith("-----BEGIN CERTIFICATE-----")
    return data


def token_posts(az):
    return [e for e in az.log("login") if e["path"].endswith("/oauth2/v2.0/token")]


def jwt_header(jwt):
    part = jwt.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def mi_options(fake, **kw):
    """Managed identity: no app credential, the tenant from the challenge."""
    opts = dict(auth="imds", imds_url=fake.info["imds_url"], client_id=None,
                secret_file=None, tenant=None)
    opts.update(kw)
    return opts


def cert_options(fake, **kw):
    app = fake.info["apps"]["cert"]
    opts = dict(auth="cert", client_id=app["client_id"], secret_file=None,
                cert_file=app["cert_file"])
    opts.update(kw)
    return opts


def workload_options(fake, **kw):
    app = fake.info["apps"]["workload"]
    opts = dict(auth="workload", client_id=app["client_id"], secret_file=None,
                token_file=app["token_file"])
    opts.update(kw)
    return opts


def arc_env(fake):
    return {"IDENTITY_ENDPOINT": fake.info["arc_identity_endpoint"],
            "IMDS_ENDPOINT": fake.info["arc_imds_endpoint"],
            "KVFS_TEST_ARC_TOKEN_DIR": fake.info["arc_token_dir"]}


def appservice_env(fake):
    return {"IDENTITY_ENDPOINT": fake.info["identity_endpoint"],
            "IDENTITY_HEADER": fake.info["identity_header"]}


def one_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line, got:\n" + text
    return lines[0]


# --- managed identity -----------------------------------------------------------

def test_imds_system_assigned(mount, az):
    m = mount(**mi_options(az))
    read_cert(m)
    imds = az.log("imds")
    assert len(imds) == 1
    assert imds[0]["status"] == 200
    assert imds[0]["params"]["resource"] == "https://vault.azure.net"
    assert imds[0]["params"]["api-version"] == "2018-02-01"
    assert not {"client_id", "object_id", "msi_res_id"} & set(imds[0]["params"])
    # IMDS needs no tenant: no challenge round trip, every request with
    # the token
    vault = az.log("vault")
    assert all(e["auth"] and e["status"] == 200 for e in vault)
    assert az.log("login") == []
    assert "credential provider 'imds'" in m.stderr()


@pytest.mark.parametrize("selector", ["client_id", "object_id", "msi_res_id"])
def test_imds_user_assigned(mount, az, selector):
    value = az.info["identities"]["user"][selector]
    m = mount(**mi_options(az, **{selector: value.replace(",", "\\,")}))
    read_cert(m)
    imds = az.log("imds")
    assert len(imds) == 1 and imds[0]["status"] == 200
    assert imds[0]["params"][selector] == value


def test_appservice(mount, az):
    ident = az.info["identities"]["user"]
    m = mount(env=appservice_env(az), **mi_options(az, msi_res_id=ident["msi_res_id"]))
    read_cert(m)
    log = az.log("appservice")
    assert len(log) == 1 and log[0]["status"] == 200
    assert log[0]["params"]["api-version"] == "2019-08-01"
    assert log[0]["params"]["mi_res_id"] == ident["msi_res_id"]
    assert az.log("imds") == []
    assert "credential provider 'appservice'" in m.stderr()
    assert "IDENTITY_HEADER" in m.stderr()


def test_arc(mount, az):
    m = mount(env=arc_env(az), binary=util.testhooks_binary(), **mi_options(az))
    read_cert(m)
    log = az.log("arc")
    # the challenge, then the request with the key file's contents
    assert [(e["auth"], e["status"]) for e in log] == [(False, 401), (True, 200)]
    assert log[0]["params"]["api-version"] == "2020-06-01"
    assert "credential provider 'arc'" in m.stderr()


def test_installed_kvfs_keeps_arc_key_directory(az, tmp_path):
    """Only kvfs-testhooks may read Arc keys outside /var/opt/azcmagent/tokens."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    opts = dict(secret_options(az), **mi_options(az))
    r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"], str(mnt)],
                 env=arc_env(az))
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "'arc'" in line and "/var/opt/azcmagent/tokens" in line
    assert not util.is_mounted(str(mnt))
    assert [e["status"] for e in az.log("arc")] == [401]


def test_imds_410_then_200_mounts(mount, az):
    az.fault(server="imds", kind="410", count=1)
    m = mount(**mi_options(az))
    read_cert(m)
    assert [e["status"] for e in az.log("imds")] == [410, 200]


def test_imds_400_fails_fast_naming_the_identity(az, tmp_path):
    wrong = str(uuid.uuid4())
    opts = dict(secret_options(az), **mi_options(az, client_id=wrong))
    r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"], str(tmp_path)])
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "'imds'" in line and "400" in line
    assert "Identity not found" in line and wrong in line
    assert az.info["imds_url"] in line
    assert len(az.log("imds")) == 1, "a 400 is final: no retry"
    assert not util.is_mounted(str(tmp_path))


def test_imds_ignores_http_proxy(mount, az, monkeypatch):
    # a dead proxy for plain http, which is what IMDS speaks
    env = {"http_proxy": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}
    for k in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(k, raising=False)
    m = mount(env=env, **mi_options(az))
    read_cert(m)
    assert [e["status"] for e in az.log("imds")] == [200]


# --- app credentials ------------------------------------------------------------

@pytest.mark.parametrize("alg", ["PS256", "RS256"])
def test_cert(mount, az, alg):
    m = mount(**cert_options(az, cert_alg=alg))
    read_cert(m)
    posts = token_posts(az)
    assert [e["status"] for e in posts] == [200]
    header = jwt_header(az.credentials()["assertions"][-1])
    assert header["alg"] == alg
    thumb = "x5t#S256" if alg == "PS256" else "x5t"
    assert thumb in header and "x5c" not in header
    assert "credential provider 'cert'" in m.stderr()


def test_cert_pkcs12_with_password_file(mount, az):
    app = az.info["apps"]["cert"]
    m = mount(**cert_options(az, cert_file=app["pfx_file"],
                             cert_password_file=app["pfx_password_file"]))
    read_cert(m)
    assert [e["status"] for e in token_posts(az)] == [200]


def test_cert_pkcs12_password_from_environment_with_chain(mount, az):
    app = az.info["apps"]["cert"]
    m = mount(env={"AZURE_CLIENT_CERTIFICATE_PATH": app["pfx_file"],
                   "AZURE_CLIENT_CERTIFICATE_PASSWORD": app["pfx_password"],
                   "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN": "true"},
              **cert_options(az, cert_file=None))
    read_cert(m)
    assert [e["status"] for e in token_posts(az)] == [200]
    header = jwt_header(az.credentials()["assertions"][-1])
    assert len(header["x5c"]) >= 1
    with open("/proc/%d/environ" % m.proc.pid, "rb") as f:
        assert app["pfx_password"].encode() not in f.read()


def test_unprotected_cert_files_are_refused(az, tmp_path):
    app = az.info["apps"]["cert"]
    for field, src in (("cert_file", app["cert_file"]),
                       ("cert_password_file", app["pfx_password_file"])):
        loose = tmp_path / field
        with open(src, "rb") as f:
            loose.write_bytes(f.read())
        loose.chmod(0o644)
        opts = dict(secret_options(az), **cert_options(az))
        if field == "cert_password_file":
            opts["cert_file"] = app["pfx_file"]
        opts[field] = str(loose)
        r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"],
                      str(tmp_path)])
        assert r.returncode == 1, field
        assert "UNPROTECTED" in r.stderr and "0644" in r.stderr, r.stderr
        assert not util.is_mounted(str(tmp_path))
    assert token_posts(az) == []


def test_workload_token_file_is_read_for_each_request(mount, az):
    app = az.info["apps"]["workload"]
    m = mount(**workload_options(az))
    read_cert(m, "www")
    first = az.credentials()["assertions"][-1]
    # Kubernetes rotates the file; the next token request must send the
    # new one (the fake refuses anything but the file's current content).
    renewed = az.renew_federated_token()["token"]
    assert renewed != first
    az.revoke_tokens()
    read_cert(m, "api")
    posts = token_posts(az)
    assert [e["status"] for e in posts] == [200, 200]
    assert az.credentials()["assertions"][-1] == renewed
    with open(app["token_file"]) as f:
        assert f.read().strip() == renewed


def test_auto_prefers_cert_to_secret(mount, az):
    m = mount(**cert_options(az, auth="auto",
                             secret_file=az.info["apps"]["secret"]["secret_file"]))
    read_cert(m)
    err = m.stderr()
    assert "credential provider 'cert'" in err and "cert_file=" in err
    assert len(az.credentials()["assertions"]) >= 1
    assert [e["status"] for e in token_posts(az)] == [200]


def test_auto_falls_back_to_imds(mount, az):
    m = mount(**mi_options(az, auth="auto"))
    read_cert(m)
    assert "credential provider 'imds'" in m.stderr()
    assert [e["status"] for e in az.log("imds")] == [200]


# --- tenant, challenge and 401 ---------------------------------------------------

def test_tenant_discovered_from_the_challenge(mount, az):
    m = mount(tenant=None)
    read_cert(m)
    vault = az.log("vault")
    assert (vault[0]["auth"], vault[0]["status"]) == (False, 401)
    assert all(e["auth"] for e in vault[1:])
    login = az.log("login")
    assert login[0]["path"] == "/%s/v2.0/.well-known/openid-configuration" % az.info["tenant"]
    assert [e["status"] for e in token_posts(az)] == [200]


def test_challenge_resource_must_match_the_vault(az, tmp_path):
    opts = secret_options(az)
    opts["tenant"] = None
    opts["resource"] = None   # the fake vault is 127.0.0.1, not *.vault.azure.net
    r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"], str(tmp_path)])
    assert r.returncode == 1
    assert "not its domain" in r.stderr and "resource=" in r.stderr
    assert az.log("login") == [], "no token may even be asked for"
    assert not util.is_mounted(str(tmp_path))


def test_vault_401_recovers_with_one_refresh(mount, az):
    m = mount()
    read_cert(m, "www")
    az.revoke_tokens()
    az.reset_log()
    read_cert(m, "api")
    assert [e["status"] for e in token_posts(az)] == [200]
    vault = az.log("vault")
    assert [e["status"] for e in vault] == [401, 200]


def test_concurrent_401s_share_one_refresh(mount, az):
    m = mount()
    read_cert(m, "www")
    az.revoke_tokens()
    az.reset_log()
    names = ["bulk-%03d" % i for i in range(8)]
    errors = util.read_concurrently(lambda name: read_cert(m, name), names)
    assert errors == []
    assert [e["status"] for e in token_posts(az)] == [200]
    assert len([e for e in az.log("vault") if e["status"] == 200]) == 8


# --- nothing secret in the debug log ---------------------------------------------

@pytest.mark.parametrize("provider", ["secret", "cert", "workload", "imds", "appservice",
                                      "arc"])
def test_debug_log_holds_no_secret(mount, az, provider):
    info = az.info
    env, binary = None, None
    if provider == "secret":
        opts = {}
    elif provider == "cert":
        opts = cert_options(az)
    elif provider == "workload":
        opts = workload_options(az)
    elif provider == "imds":
        opts = mi_options(az)
    elif provider == "appservice":
        opts, env = mi_options(az), appservice_env(az)
    else:
        opts, env, binary = mi_options(az), arc_env(az), util.testhooks_binary()
    opts["debug"] = True
    m = mount(env=env, binary=binary, **opts)
    read_cert(m, "www")
    az.revoke_tokens()           # a second token, through the 401 path
    read_cert(m, "api")
    m.unmount()
    text = m.stderr()
    assert "GET " in text and "-> 200" in text, "-d must log requests"
    creds = az.credentials()
    secrets = [t for t in creds["tokens"]] + [a for a in creds["assertions"]]
    secrets.append(info["apps"]["secret"]["secret"])
    secrets.append(info["identity_header"])
    with open(info["apps"]["workload"]["token_file"]) as f:
        secrets.append(f.read().strip())
    assert len(creds["tokens"]) >= 2
    for s in secrets:
        assert s not in text
        # no recognisable piece of a JWT either (its signature part)
        if s.count(".") == 2:
            assert s.rsplit(".", 1)[1][:40] not in text
    for name in os.listdir(info["arc_token_dir"]):
        with open(os.path.join(info["arc_token_dir"], name)) as f:
            assert f.read() not in text
