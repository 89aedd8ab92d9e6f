"""Permissions per collection: an identity may be allowed certificates but
not secrets.  A collection whose first listing the vault refuses (403,
ForbiddenByRbac from an RBAC vault, Forbidden/AccessDenied from an access
policy) refuses the mount with one line naming it; one refused later keeps
serving what it has and says so in .kvfs/status and .kvfs/metrics, while
the other collections revalidate; the next listing that works clears it.
A refused GET of one object closes that file (EACCES), as for a
certificate's key."""

import errno
import json
import math
import os

import pytest

from conftest import option_string, run_kvfs, secret_options
from client import FakeAzure
from test_auth import one_line
from test_control import parse_metrics, value
from test_revalidation import hup, wait_until
from test_startup import assert_not_mounted
from util import vault_log

TWO = "certificates+secrets"
SECRET_LIST = "Microsoft.KeyVault/vaults/secrets/readMetadata/action"
SECRET_GET = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
# What each model's refusal says: its code and inner code.
CODES = {"rbac": ("Forbidden", "ForbiddenByRbac"), "policy": ("Forbidden", "AccessDenied")}


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """Shadows the session fake: the tests take permissions away."""
    with FakeAzure(str(tmp_path_factory.mktemp("fake-perm")), bulk=30) as f:
        yield f
        assert "Traceback" not in f.output(), f.output()


@pytest.fixture(autouse=True)
def allowed(fake):
    """Every test starts and ends with the app allowed everything."""
    fake.deny("secret")
    yield
    fake.deny("secret")


def own_secrets(fake):
    return sorted(o["name"] for o in fake.state()["secrets"])


def list_pages(log, kind):
    return [e for e in log if e["path"].rstrip("/") == "/" + kind]


def status(m):
    with open(m.p(".kvfs", "status")) as f:
        return json.load(f)


def metrics(m):
    with open(m.p(".kvfs", "metrics")) as f:
        return parse_metrics(f.read())[0]


def read(path):
    with open(path, "rb") as f:
        return f.read()


@pytest.mark.parametrize("model", ["rbac", "policy"])
def test_refused_at_mount_fails_it(az, tmp_path, model):
    az.deny("secret", [SECRET_LIST], model=model)
    az.reset_log()
    opts = secret_options(az)
    opts["collections"] = TWO
    r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"], str(tmp_path)])
    assert r.returncode == 1, r.stderr
    line = one_line(r.stderr)
    code, inner = CODES[model]
    assert line.startswith("kvfs: cannot list secrets of '%s': 403 " % az.info["vault_url"]), line
    assert code in line and inner in line, line
    assert_not_mounted(tmp_path)
    # the certificates were listed, the secrets refused once, nothing else
    log = vault_log(az)
    assert [e["status"] for e in list_pages(log, "secrets")] == [403]
    assert len(list_pages(log, "certificates")) == math.ceil(len(az.state()["certificates"]) / 25)


def test_refused_later_serves_stale_and_says_so(mount, az):
    name = own_secrets(az)[0]
    m = mount(collections=TWO)
    before = sorted(os.listdir(m.p("secrets")))
    want = read(m.p("secrets", name))
    st = status(m)
    assert set(st["collections"]) == {"certificates", "secrets"}
    for c in ("certificates", "secrets"):
        assert st["collections"][c]["last_error"] is None
        assert st["collections"][c]["last_error_at"] is None
        assert st["collections"][c]["last_listing"] == st["last_refresh"]
    assert st["collections"]["secrets"]["objects"] == len(before) - 1  # .versions

    # secrets taken away; a certificate and a secret added meanwhile
    az.deny("secret", [SECRET_LIST])
    az.create("perm-new-cert")
    az.create_secret("perm-new-secret", "late")
    try:
        az.reset_log()
        hup(m)
        wait_until(lambda: "perm-new-cert" in os.listdir(m.p("certificates")), 15,
                   "the certificates revalidated")
        wait_until(lambda: status(m)["collections"]["secrets"]["last_error"], 15,
                   "the secrets' error in the status")
        st = status(m)
        # one listing of each: the certificates' pages, one refused secrets page
        log = vault_log(az)
        assert len(list_pages(log, "certificates")) == \
            math.ceil(len(az.state()["certificates"]) / 25)
        assert [e["status"] for e in list_pages(log, "secrets")] == [403]

        # the secrets are served as they were
        # (listed, not looked up: the kernel keeps a lookup's ENOENT a while)
        assert sorted(os.listdir(m.p("secrets"))) == before
        assert read(m.p("secrets", name)) == want

        certs, secrets = st["collections"]["certificates"], st["collections"]["secrets"]
        assert certs["last_error"] is None and certs["last_error_at"] is None
        assert certs["objects"] == st["certificates"] == len(az.state()["certificates"])
        assert "403" in secrets["last_error"] and "ForbiddenByRbac" in secrets["last_error"]
        assert secrets["last_error_at"] >= st["mounted_at"]
        assert secrets["objects"] == len(before) - 1
        assert secrets["last_listing"] <= certs["last_listing"]
        assert st["last_refresh"] == secrets["last_listing"]  # the oldest
        assert "cannot list secrets" in st["last_error"]

        s = metrics(m)
        assert value(s, "kvfs_listing_failing", collection="secrets") == 1
        assert value(s, "kvfs_listing_failing", collection="certificates") == 0
        assert value(s, "kvfs_listing_errors_total", collection="secrets") == 1
        assert value(s, "kvfs_listing_errors_total", collection="certificates") == 0
        assert value(s, "kvfs_listings_total", collection="certificates") == 2
        assert value(s, "kvfs_objects", collection="certificates") == certs["objects"]
        assert value(s, "kvfs_last_refresh_timestamp_seconds", collection="secrets") == \
            secrets["last_listing"]
        err = m.stderr()
        assert err.count("cannot revalidate the secrets: 403") == 1, err
        assert "cannot revalidate the certificates" not in err, err

        # permission back: the next revalidation clears the error
        az.deny("secret")
        hup(m)
        wait_until(lambda: status(m)["collections"]["secrets"]["last_error"] is None, 15,
                   "the secrets' error cleared")
        st = status(m)
        assert st["collections"]["secrets"]["last_error_at"] is None
        assert "perm-new-secret" in os.listdir(m.p("secrets"))
        assert read(m.p("secrets", "perm-new-secret")) == b"late"
        assert value(metrics(m), "kvfs_listing_failing", collection="secrets") == 0
        assert "revalidated the secrets again after" in m.stderr()
    finally:
        az.delete("perm-new-cert")
        az.delete("perm-new-secret", kind="secrets")


@pytest.mark.parametrize("model", ["rbac", "policy"])
def test_refused_get_closes_the_file(mount, az, model):
    """List allowed, get refused: the mount works, the secret's open is
    EACCES, as a certificate's key the vault refuses."""
    name = own_secrets(az)[0]
    az.deny("secret", [SECRET_GET], model=model)
    m = mount(collections=TWO)
    assert name in os.listdir(m.p("secrets"))
    az.reset_log()
    with pytest.raises(PermissionError) as e:
        read(m.p("secrets", name))
    assert e.value.errno == errno.EACCES
    gets = [e for e in vault_log(az) if e["path"].rstrip("/").lower() == "/secrets/" + name.lower()]
    assert [g["status"] for g in gets] == [403]
    assert status(m)["collections"]["secrets"]["last_error"] is None  # the listing works
    az.deny("secret")
