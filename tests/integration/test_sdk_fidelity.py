"""Fidelity of the fake Azure with the official Azure SDK for JavaScript.

If the official client cannot use the fake, the fake is wrong (DESIGN.md §7).
Each test starts from a reset request log, runs tests/sdk/fidelity.mjs for
one or more phases against a fake of its own (one per module), and then
reads the fake's log to check the flow the SDK went through.

Needs Node >= 20 in tests/node and the pinned SDK in tests/sdk, both from
`tests/install-deps --test`. Without them the tests fail (they never skip). Run with Debian's Python:

    /usr/bin/python3 -m pytest tests/integration/test_sdk_fidelity.py
"""

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SDK_DIR = os.path.join(ROOT, "tests", "sdk")
FIDELITY = os.path.join(SDK_DIR, "fidelity.mjs")
sys.path.insert(0, os.path.join(ROOT, "tests", "fakeazure"))

from client import FakeAzure  # noqa: E402

# Node.js >= 20 from the npm registry (tests/node, installed by
# `tests/install-deps --test`), never the machine's own node: a fresh Debian
# 12 has Node 18, which the pinned SDK does not support.
NODE = os.path.join(ROOT, "tests", "node", "bin", "node")
RUN_TIMEOUT = 300

# Variables that would steer the SDK's credentials away from the fake.
SCRUB_ENV = ("AZURE_POD_IDENTITY_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
             "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT", "MSI_ENDPOINT", "MSI_SECRET",
             "AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET",
             "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE",
             "AZURE_AUTHORITY_HOST", "NODE_OPTIONS")


def node_problem(node, package_json):
    """What is wrong with `node` for the SDK of `package_json`, or None."""
    with open(package_json) as f:
        engines = json.load(f)["engines"]["node"]
    need = int(engines.lstrip(">="))
    try:
        version = subprocess.run([node, "--version"], stdin=subprocess.DEVNULL,
                                 capture_output=True, text=True, timeout=60,
                                 check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "%s does not run (the SDK needs Node %s)" % (node, engines)
    try:
        major = int(version.lstrip("v").split(".")[0])
    except ValueError:
        return "%s --version says %r (the SDK needs Node %s)" % (node, version, engines)
    if major < need:
        return "%s is Node %s, the SDK needs Node %s" % (node, version, engines)
    return None


def require_sdk():
    """Fail (never skip) unless Node >= 20 and the pinned SDK packages are installed."""
    fix = "run `tests/install-deps --test`"
    problem = node_problem(NODE, os.path.join(SDK_DIR, "package.json"))
    if problem:
        pytest.fail("%s: %s" % (problem, fix), pytrace=False)
    with open(os.path.join(SDK_DIR, "package.json")) as f:
        pinned = json.load(f)["dependencies"]
    wrong = []
    for name, version in sorted(pinned.items()):
        path = os.path.join(SDK_DIR, "node_modules", name, "package.json")
        try:
            with open(path) as f:
                have = json.load(f)["version"]
        except OSError:
            have = None
        if have != version:
            wrong.append("%s %s (installed: %s)" % (name, version, have or "none"))
    if wrong:
        pytest.fail("the official Azure SDK is not installed in tests/sdk/node_modules "
                    "(needs %s): %s" % (", ".join(wrong), fix), pytrace=False)


def fake_node(tmp_path, version):
    path = tmp_path / "node"
    path.write_text("#!/bin/sh\necho %s\n" % version)
    path.chmod(0o755)
    return str(path)


def test_node_older_than_the_sdk_engine_is_named(tmp_path):
    """Debian 12's Node 18 is refused in one line that says how to fix it."""
    problem = node_problem(fake_node(tmp_path, "v18.20.4"),
                           os.path.join(SDK_DIR, "package.json"))
    assert problem is not None
    assert "v18.20.4" in problem and ">=20" in problem
    assert "\n" not in problem
    assert node_problem(fake_node(tmp_path, "v20.20.2"),
                        os.path.join(SDK_DIR, "package.json")) is None
    assert "does not run" in node_problem(str(tmp_path / "missing"),
                                          os.path.join(SDK_DIR, "package.json"))


def test_sdk_runs_on_the_node_it_supports():
    """The fidelity tests run the project's Node, which the SDK supports."""
    require_sdk()
    assert NODE.startswith(os.path.join(ROOT, "tests", "node"))
    assert node_problem(NODE, os.path.join(SDK_DIR, "package.json")) is None


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeAzure(tmp_path_factory.mktemp("fakeazure-sdk")) as fa:
        yield fa


def run_fidelity(fake, *phases):
    """Reset the fake's log, run fidelity.mjs, return (process, log entries)."""
    require_sdk()
    fake.reset_log()
    args = [NODE, FIDELITY]
    if phases:
        args += ["--only", ",".join(phases)]
    args.append(os.path.join(fake.state_dir, "info.json"))
    env = {k: v for k, v in os.environ.items() if k not in SCRUB_ENV}
    env["NODE_EXTRA_CA_CERTS"] = fake.info["ca_file"]  # read by Node at start only
    proc = subprocess.run(args, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=RUN_TIMEOUT)
    return proc, fake.log()


def assert_passed(proc, *required):
    """Exit 0, no FAIL line, and a PASS line starting with each of required."""
    lines = proc.stdout.splitlines()
    report = "fidelity.mjs exited %d\n--- stdout\n%s\n--- stderr\n%s" % (
        proc.returncode, proc.stdout, proc.stderr)
    failed = [l for l in lines if l.startswith("FAIL")]
    assert proc.returncode == 0 and not failed, report
    for prefix in required:
        assert any(l.startswith("PASS " + prefix) for l in lines), \
            "no passing check '%s'\n%s" % (prefix, report)


def fmt(entries):
    return "\n".join("%4s %-10s %-4s %-60s auth=%-5s %s" % (
        e.get("seq"), e["server"], e["method"], e["path"], e["auth"], e["status"])
        for e in entries)


def discovery_path(fake):
    return "/%s/v2.0/.well-known/openid-configuration" % fake.info["tenant"]


def token_path(fake):
    return "/%s/oauth2/v2.0/token" % fake.info["tenant"]


def check_confidential_flow(fake, log, api_version=None):
    """The flow of one confidential-client credential used by a
    CertificateClient and a SecretClient (AZURE.md §7.2, FACTS.md)."""
    vault = [e for e in log if e["server"] == "vault"]
    login = [e for e in log if e["server"] == "login"]
    dump = fmt(log)
    assert not [e for e in log if e["server"] not in ("vault", "login")], dump

    # the first request of each client goes out without a token and gets the 401
    unauth = [e for e in vault if not e["auth"]]
    assert len(unauth) == 2 and all(e["status"] == 401 for e in unauth), dump
    assert unauth[0] is vault[0] and unauth[0]["path"] == "/certificates", dump

    # then discovery and one token for both clients, no instance discovery
    assert [(e["method"], e["path"], e["status"]) for e in login] == [
        ("GET", discovery_path(fake), 200),
        ("POST", token_path(fake), 200),
    ], dump
    order = [e["seq"] for e in (vault[0], login[0], login[1], vault[1])]
    assert order == sorted(order), "expected 401, discovery, token, retried request:\n" + dump

    # the retried request and every later one carry the token
    assert vault[1]["auth"] and vault[1]["path"] == "/certificates" \
        and vault[1]["status"] == 200, dump
    authed = [e for e in vault if e["auth"]]
    assert len(authed) == len(vault) - 2, dump

    # the full listing walks the pages through nextLink ($skiptoken)
    ncerts = len(fake.state()["certificates"])
    lists = [e for e in authed if e["path"] == "/certificates"]
    first_pages = [e for e in lists if "$skiptoken" not in e["params"]]
    next_pages = [e for e in lists if "$skiptoken" in e["params"]]
    assert len(first_pages) == 2, dump           # default page size, then maxresults=7
    assert len(next_pages) >= (math.ceil(ncerts / 25) - 1) + (math.ceil(ncerts / 7) - 1), dump
    assert all(e["status"] == 200 for e in lists), dump

    # every certificate was fetched; the expected refusals and nothing else
    got = {e["path"].strip("/").split("/")[1].lower() for e in authed
           if e["path"].startswith("/certificates/") and e["status"] == 200}
    names = {c["name"].lower() for c in fake.state()["certificates"]}
    assert names <= got, "certificates never fetched: %s" % sorted(names - got)
    errors = sorted((e["status"], e["path"].rstrip("/")) for e in authed if e["status"] != 200)
    assert errors == [
        (403, "/secrets/disabled-cert"),
        (404, "/certificates/kvfs-fidelity-no-such-certificate"),
        (404, "/secrets/kvfs-fidelity-no-such-certificate"),
    ], dump
    assert [e for e in vault if e["path"].startswith("/secrets/")][0] is unauth[1], dump

    # every vault request names an api-version
    versions = {e["params"].get("api-version") for e in vault}
    assert None not in versions, dump
    if api_version:
        assert versions == {api_version}, versions


def test_official_sdk_uses_the_fake(fake):
    """All phases: both confidential clients, workload identity, RBAC, IMDS, App Service."""
    proc, log = run_fidelity(fake)
    assert_passed(proc,
                  "ClientSecretCredential: list certificates",
                  "ClientSecretCredential: get every certificate",
                  "ClientSecretCredential: www secret is PEM",
                  "ClientSecretCredential: api secret is PKCS#12",
                  "ClientSecretCredential: disabled-cert: secret is 403",
                  "ClientCertificateCredential: list certificates",
                  "ClientCertificateCredential: get every certificate",
                  "ClientCertificateCredential: list versions of mail",
                  "ClientCertificateCredential: disabled-cert: secret is 403",
                  "ClientCertificateCredential: missing certificate is 404",
                  "WorkloadIdentityCredential: get certificate www",
                  "RBAC (reader): get secret www is 403",
                  "managed identity (IMDS): system-assigned token",
                  "managed identity (IMDS) user-assigned: get certificate www",
                  "managed identity (App Service): system-assigned token",
                  "managed identity (App Service) user-assigned: get certificate www")
    assert {"vault", "login", "imds", "appservice"} <= {e["server"] for e in log}


def test_client_secret_flow(fake):
    proc, log = run_fidelity(fake, "secret")
    assert_passed(proc, "ClientSecretCredential: list certificates")
    check_confidential_flow(fake, log)


def test_client_certificate_flow(fake):
    """ClientCertificateCredential signs an assertion (the fake verifies it);
    this phase pins the clients to api-version 7.4, the one kvfs uses."""
    proc, log = run_fidelity(fake, "cert")
    assert_passed(proc, "ClientCertificateCredential: list certificates")
    check_confidential_flow(fake, log, api_version="7.4")


def test_sdk_pages_through_an_empty_last_page(fake):
    """The real service may end a listing with {"value":[],"nextLink":null}."""
    fake.settings(empty_last_page=True)
    try:
        proc, log = run_fidelity(fake, "secret")
    finally:
        fake.settings(empty_last_page=False)
    assert_passed(proc, "ClientSecretCredential: list certificates",
                  "ClientSecretCredential: list versions of mail with maxresults=1")
    lists = [e for e in log if e["server"] == "vault" and e["path"] == "/certificates"
             and e["auth"]]
    ncerts = len(fake.state()["certificates"])
    # one page more than the items need, for each of the two listings
    assert len(lists) == (math.ceil(ncerts / 25) + 1) + (math.ceil(ncerts / 7) + 1), fmt(log)


@pytest.mark.parametrize("phase,server,path,api_version", [
    ("imds", "imds", "/metadata/identity/oauth2/token", "2018-02-01"),
    ("appservice", "appservice", "/msi/token", "2019-08-01"),
])
def test_managed_identity_flow(fake, phase, server, path, api_version):
    proc, log = run_fidelity(fake, phase)
    assert_passed(proc, "managed identity")
    dump = fmt(log)
    assert not [e for e in log if e["server"] == "login"], dump
    ident = [e for e in log if e["server"] == server]
    # system-assigned, user-assigned, and an unknown identity refused with 400
    assert [e["status"] for e in ident] == [200, 200, 400], dump
    users = fake.info["identities"]
    assert [e["params"].get("client_id") for e in ident] == [
        None, users["user"]["client_id"], "00000000-0000-0000-0000-00000000dead"], dump
    for e in ident:
        assert e["method"] == "GET" and e["path"].rstrip("/") == path, dump
        assert e["params"]["api-version"] == api_version, dump
        assert e["params"]["resource"] == fake.info["resource"], dump
    vault = [e for e in log if e["server"] == "vault"]
    assert all(e["status"] == 401 for e in vault if not e["auth"]), dump
    assert all(e["status"] == 200 for e in vault if e["auth"]) and \
        len([e for e in vault if e["auth"]]) >= 6, dump


def test_secrets_and_keys_collections(fake):
    """SecretClient and KeyClient list, get, page and version the secrets
    and keys collections, and get the real refusals."""
    proc, log = run_fidelity(fake, "collections")
    assert_passed(proc, "secrets and keys: list secrets across pages",
                  "secrets and keys: getSecret of every enabled secret",
                  "secrets and keys: listPropertiesOfSecretVersions",
                  "secrets and keys: disabled-secret is 403",
                  "secrets and keys: list keys across pages",
                  "secrets and keys: getKey of RSA, EC",
                  "secrets and keys: listPropertiesOfKeyVersions",
                  "secrets and keys: disabled-key is served with enabled false",
                  "secrets and keys: RBAC (reader): list secrets is 403")
    vault = [e for e in log if e["server"] == "vault"]
    dump = fmt(log)
    assert {e["params"].get("api-version") for e in vault} == {"7.4"}, dump
    # each client's first request is the unauthenticated one
    assert [e["status"] for e in vault if not e["auth"]] == [401] * 4, dump
    errors = sorted((e["status"], e["path"].rstrip("/")) for e in vault
                    if e["auth"] and e["status"] != 200)
    assert errors == [
        (403, "/keys/rsa-key"), (403, "/secrets"),
        (403, "/secrets/disabled-secret"),
        (404, "/keys/kvfs-fidelity-no-such-certificate"),
        (404, "/secrets/kvfs-fidelity-no-such-certificate"),
    ], dump
    nsecrets = len(fake.state()["secrets"]) + len(fake.state()["certificates"])
    secret_lists = [e for e in vault if e["path"] == "/secrets" and e["status"] == 200]
    assert len(secret_lists) == math.ceil(nsecrets / 7), dump


def test_workload_identity_flow(fake):
    proc, log = run_fidelity(fake, "workload")
    assert_passed(proc, "WorkloadIdentityCredential: get certificate www")
    login = [(e["method"], e["path"], e["status"]) for e in log if e["server"] == "login"]
    assert login == [("GET", discovery_path(fake), 200),
                     ("POST", token_path(fake), 200)], fmt(log)


def test_rbac_refusals(fake):
    proc, log = run_fidelity(fake, "rbac")
    assert_passed(proc, "RBAC (reader): get certificate www is allowed",
                  "RBAC (reader): get secret www is 403",
                  "RBAC (nolist): list certificates is 403")
    refused = sorted(e["path"].rstrip("/") for e in log
                     if e["server"] == "vault" and e["status"] == 403)
    assert refused == ["/certificates", "/secrets/www"], fmt(log)


def test_foreign_nextlink_trap_sees_the_sdk(fake):
    """The fake's foreign_nextlink fault works with a real client: the SDK
    follows the nextLink to the foreign origin, which records that a bearer
    token came with it (FACTS.md; kvfs must never do that)."""
    try:
        proc, log = run_fidelity(fake, "foreign")
    finally:
        fake.clear_faults()
    assert_passed(proc, "foreign nextLink")
    seen = fake.foreign()
    assert len(seen) == 1 and seen[0]["path"] == "/certificates", seen
    assert seen[0]["bearer"] is True, seen
    assert "WITH its bearer token" in proc.stdout, proc.stdout


def test_fidelity_script_fails_on_a_wrong_secret(fake, tmp_path):
    """The check can fail: a wrong client secret must give a non-zero exit
    and a FAIL line naming the AADSTS error."""
    require_sdk()
    info = dict(fake.info)
    info["apps"] = dict(info["apps"])
    info["apps"]["secret"] = dict(info["apps"]["secret"], secret="not-the-secret")
    bad = tmp_path / "info.json"
    bad.write_text(json.dumps(info))
    env = {k: v for k, v in os.environ.items() if k not in SCRUB_ENV}
    env["NODE_EXTRA_CA_CERTS"] = fake.info["ca_file"]
    proc = subprocess.run([NODE, FIDELITY, "--only", "secret", str(bad)], cwd=ROOT, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, timeout=RUN_TIMEOUT)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "AADSTS7000215" in proc.stdout, proc.stdout
