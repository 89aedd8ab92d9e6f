"""include=, exclude= and tag=: a mount shows exactly the certificates the
filters let through, without case for the globs, exclude winning, every
occurrence of an option counting and a tag absent matching nothing.  A
filtered-out certificate costs no request and is ENOENT under every path;
listing costs the same ⌈N/25⌉ pages as without a filter; .kvfs/status
counts the objects left out as "filtered".  Tags are those of the
listing: a certificate whose tags change enters or leaves the mount at
the next revalidation.

The module has its own fake, because a test changes tags in the vault."""

import errno
import json
import math
import os
import signal
import time

import pytest

from client import FakeAzure
from util import vault_log


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeAzure(str(tmp_path_factory.mktemp("fake-filters")), bulk=60) as f:
        yield f
        assert "Traceback" not in f.output(), f.output()


def pages(fake):
    """The list requests of one listing of the vault's certificates."""
    return math.ceil(len(fake.state()["certificates"]) / 25)


def is_list_page(e):
    return e["path"].rstrip("/") == "/certificates"


def all_names(fake):
    return [c["name"] for c in fake.state()["certificates"]]


def listed(m):
    return sorted(os.listdir(m.p("certificates")), key=str.lower)


def status(m):
    with open(m.p(".kvfs", "status")) as f:
        return json.load(f)


def errno_of(fn, *args):
    try:
        fn(*args)
    except OSError as e:
        return e.errno
    return 0


def read(path):
    with open(path, "rb") as f:
        return f.read()


def assert_shows(m, fake, want):
    """The mount lists exactly want; status counts the rest filtered."""
    assert listed(m) == sorted(want, key=str.lower)
    st = status(m)
    assert st["certificates"] == len(want)
    assert st["filtered"] == len(all_names(fake)) - len(want)


def wait_until(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("not within %.0f s: %s" % (timeout, what))
        time.sleep(0.05)


def test_include_globs_ignore_case_and_filtered_cost_nothing(mount, az):
    m = mount(include="WEB*")
    # the mount's only vault requests: the list pages, filter or not
    log = vault_log(az)
    assert len(log) == pages(az) >= 3
    assert all(is_list_page(e) and e["status"] == 200 for e in log)
    assert_shows(m, az, ["WebFrontend"])

    az.reset_log()
    # a filtered-out certificate is not there, whatever is asked of it
    for path in (("www",), ("WWW",), ("www", "cert.pem"), ("mail", "versions"),
                 ("mail", "versions", az.certificate("mail")["latest"])):
        assert errno_of(os.stat, m.p("certificates", *path)) == errno.ENOENT
    assert errno_of(read, m.p("certificates", "www", "cert.pem")) == errno.ENOENT
    assert errno_of(os.listdir, m.p("certificates", "mail", "versions")) \
        == errno.ENOENT
    assert vault_log(az) == []

    # the one shown is fetched, under any spelling, once
    assert read(m.p("certificates", "webfrontend", "cert.pem"))
    log = vault_log(az)
    assert [e["path"].strip("/").lower() for e in log] == \
        ["certificates/webfrontend"]


def test_every_include_and_exclude_counts(mount, az):
    # option_string() keeps one value per key: the rest go in as more -o
    # options of the same string, as fstab would give them
    m = mount(include="bulk-05*,include=WWW,include=mail,"
                      "exclude=*-05[0-4],exclude=MAIL")
    assert_shows(m, az, ["www"] + ["bulk-%03d" % i for i in range(55, 60)])
    assert errno_of(os.stat, m.p("certificates", "mail")) == errno.ENOENT
    assert errno_of(os.stat, m.p("certificates", "bulk-050")) == errno.ENOENT


def test_tags_all_required_exact_and_absent_never_matches(mount, az):
    # www: env=prod, team=web; mail: team=mail; the others have none
    m = mount(tag="team=web")
    assert_shows(m, az, ["www"])
    m = mount(tag="team=web,tag=env=prod")
    assert_shows(m, az, ["www"])
    # mail has team=mail but no env at all: it does not match
    m = mount(tag="team=mail,tag=env=prod")
    assert_shows(m, az, [])
    # values are compared case included
    m = mount(tag="team=WEB")
    assert_shows(m, az, [])
    # tag= and globs together: both must let a certificate through
    m = mount(tag="team=web", include="mail")
    assert_shows(m, az, [])


def test_tag_changed_in_vault_takes_effect_at_revalidation(mount, az):
    m = mount(tag="team=web")
    assert_shows(m, az, ["www"])
    assert read(m.p("certificates", "www", "cert.pem"))
    try:
        az.set_tags("www", {"team": "ops"})
        az.set_tags("api", {"team": "web"})
        assert listed(m) == ["www"], "no change before a revalidation"
        az.reset_log()
        m.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: listed(m) == ["api"], 15, "api listed, www gone")
        assert_shows(m, az, ["api"])
        assert errno_of(os.stat, m.p("certificates", "www")) == errno.ENOENT
        assert errno_of(read, m.p("certificates", "www", "cert.pem")) \
            == errno.ENOENT
        assert read(m.p("certificates", "api", "cert.pem"))
        log = vault_log(az)
        assert sum(1 for e in log if is_list_page(e)) == pages(az)
        assert [e["path"].strip("/") for e in log if not is_list_page(e)] \
            == ["certificates/api"]
    finally:
        az.set_tags("www", {"env": "prod", "team": "web"})
        az.set_tags("api", {})
    m.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: listed(m) == ["www"], 15, "www back, api gone")
    assert_shows(m, az, ["www"])
