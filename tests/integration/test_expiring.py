"""expiring/: a symbolic link expiring/<name> -> ../certificates/<name> for
each certificate whose exp is within expiring_days= (default 30) of now,
the expired ones included; and user.kvfs.expires_in, exp - now in seconds,
on each certificate directory and its files.  Both come from the listing
and the clock: listing expiring/, reading its links and the xattr cost no
vault request, and a certificate enters expiring/ as time passes, without
a revalidation.  Filters apply.

The seeded vault has one certificate within 30 days of its exp:
expired-cert (expired 35 days ago); every other one expires in more than
300 days.  The module has its own fake, as its tests add certificates."""

import os
import stat
import subprocess
import time

import pytest

from client import FakeAzure
from util import vault_log

DAY = 86400


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeAzure(str(tmp_path_factory.mktemp("fake-expiring")), bulk=3) as f:
        yield f


@pytest.fixture(scope="module")
def soon(fake):
    """Two certificates: "soon" expires in 10 days, "later" in 45."""
    now = int(time.time())
    exp = {"soon": now + 10 * DAY, "later": now + 45 * DAY}
    for name, e in exp.items():
        fake.create(name, exp=e, nbf=now - DAY)
    yield exp
    for name in exp:
        fake.delete(name)


def links(m):
    return sorted(os.listdir(m.p("expiring")))


def test_expiring_links_the_certificates_within_30_days(mount, az, soon):
    m = mount()
    assert "expiring" in os.listdir(m.path)
    assert links(m) == ["expired-cert", "soon"]

    d = os.stat(m.p("expiring"))
    assert stat.S_ISDIR(d.st_mode) and stat.S_IMODE(d.st_mode) == 0o555
    certs = os.stat(m.p("certificates"))
    assert (d.st_mtime, d.st_atime) == (certs.st_mtime, certs.st_atime)
    for name in links(m):
        p = m.p("expiring", name)
        st = os.lstat(p)
        assert stat.S_ISLNK(st.st_mode), name
        assert stat.S_IMODE(st.st_mode) == 0o777, name
        assert os.readlink(p) == "../certificates/" + name
        assert st.st_size == len("../certificates/" + name)
        assert st.st_mtime == certs.st_mtime

    # ls -l shows exactly the links
    out = subprocess.run(["ls", "-l", m.p("expiring")], check=True,
                         capture_output=True, text=True).stdout
    shown = [line for line in out.splitlines() if not line.startswith("total")]
    assert len(shown) == 2, out
    for line, name in zip(shown, ["expired-cert", "soon"]):
        assert line.startswith("lrwxrwxrwx"), line
        assert line.endswith("%s -> ../certificates/%s" % (name, name)), line

    # following a link reaches the certificate's files
    with open(m.p("expiring", "soon", "cert.pem"), "rb") as f:
        via_link = f.read()
    with open(m.p("certificates", "soon", "cert.pem"), "rb") as f:
        assert via_link == f.read()
    assert via_link.startswith(b"-----BEGIN CERTIFICATE-----")
    # any case finds it, as in certificates/; the target is the vault's name
    assert os.readlink(m.p("expiring", "SOON")) == "../certificates/soon"

    for name in ("later", "www", "nope"):
        with pytest.raises(FileNotFoundError):
            os.lstat(m.p("expiring", name))
    # through the link, a name its certificate has not
    with pytest.raises(FileNotFoundError):
        os.lstat(m.p("expiring", "soon", "nope.pem"))


def test_expiring_days_sets_the_window(mount, az, soon):
    assert links(mount(expiring_days=60)) == ["expired-cert", "later", "soon"]
    # 0: only those already expired
    assert links(mount(expiring_days=0)) == ["expired-cert"]
    assert links(mount(expiring_days=400)) == sorted(
        c["name"] for c in az.state()["certificates"])


def test_filters_apply(mount, az, soon):
    assert links(mount(exclude="SOON")) == ["expired-cert"]
    assert links(mount(include="soon")) == ["soon"]


def test_expires_in_is_exp_minus_now(mount, az, soon):
    m = mount()
    for name, exp in (("soon", soon["soon"]), ("later", soon["later"])):
        for p in (m.p("certificates", name),
                  m.p("certificates", name, "cert.pem")):
            assert "user.kvfs.expires_in" in os.listxattr(p)
            got = int(os.getxattr(p, "user.kvfs.expires_in"))
            # a generous bound: the read is not timed
            assert abs(got - (exp - time.time())) < 3600, (p, got)
    expired = int(os.getxattr(m.p("certificates", "expired-cert"),
                              "user.kvfs.expires_in"))
    assert -36 * DAY < expired < -34 * DAY
    # a link itself carries no xattr
    assert os.listxattr(m.p("expiring", "soon"), follow_symlinks=False) == []


def test_listing_and_xattr_cost_no_request(mount, az, soon):
    m = mount()
    # the mount's listing is done: what follows must not add a request
    assert "soon" in os.listdir(m.p("certificates"))
    az.reset_log()
    for _ in range(3):
        names = links(m)
        for name in names:
            os.readlink(m.p("expiring", name))
            os.lstat(m.p("expiring", name))
            os.getxattr(m.p("certificates", name), "user.kvfs.expires_in")
    assert names == ["expired-cert", "soon"]
    assert vault_log(az) == []


def test_enters_as_time_passes_without_a_request(mount, az):
    """A certificate whose exp comes within the window a few seconds after
    the mount: there once it has, with no revalidation and no request."""
    margin = 30
    exp = int(time.time()) + 30 * DAY + margin
    az.create("edge", exp=exp, nbf=int(time.time()) - DAY)
    try:
        m = mount()
        assert "edge" in os.listdir(m.p("certificates"))
        az.reset_log()
        # the mount is up within its 20 s: not there yet
        assert time.time() < exp - 30 * DAY
        assert "edge" not in links(m)
        with pytest.raises(FileNotFoundError):
            os.lstat(m.p("expiring", "edge"))
        # waits for the clock, not for kvfs: never listed early
        deadline = time.monotonic() + margin + 120
        while "edge" not in links(m):
            assert time.monotonic() < deadline, "edge never entered"
            time.sleep(1)
        assert time.time() >= exp - 30 * DAY - 1
        # the kernel's negative entry of the lookup above goes within
        # its timeout: then the link is found
        while True:
            try:
                target = os.readlink(m.p("expiring", "edge"))
                break
            except FileNotFoundError:
                assert time.monotonic() < deadline, "edge never found"
                time.sleep(1)
        assert target == "../certificates/edge"
        assert vault_log(az) == []
    finally:
        az.delete("edge")


def test_no_expiring_without_certificates(mount, az):
    m = mount(collections="secrets")
    assert sorted(os.listdir(m.path)) == [".kvfs", "secrets"]
    with pytest.raises(FileNotFoundError):
        os.stat(m.p("expiring"))
