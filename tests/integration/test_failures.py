"""Every failure path, one fault each, with an exact expected
outcome: throttling (with and without Retry-After), random 5xx, resets
and truncated bodies, a stalled response, a huge body, hostile nextLinks
and redirects, hostile names and a malformed 'cer'.  Vault traffic is
counted from the fake's request log; wall time is only ever bounded from
above, generously.

The module has its own fake with 210 certificates, so that a listing
spans nine pages and the faults injected here never leak into other
tests."""

import base64
import errno
import os
import ssl
import threading
import time

import pytest

import util
from client import FakeAzure
from conftest import option_string, run_kvfs, secret_options
from util import vault_log


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeAzure(str(tmp_path_factory.mktemp("fake-failures")), bulk=200) as f:
        yield f
        assert "Traceback" not in f.output(), f.output()


@pytest.fixture(autouse=True)
def clean_settings(fake):
    yield
    fake.settings(hostile_names=[], malformed_cer={})


# --- helpers ------------------------------------------------------------------

def bundle_gets(fake, name):
    out = []
    for e in vault_log(fake):
        parts = e["path"].strip("/").split("/")
        if len(parts) == 2 and parts[0] == "certificates" and parts[1].lower() == name.lower():
            out.append(e)
    return out


def list_pages(fake):
    return [e for e in vault_log(fake) if e["path"].rstrip("/") == "/certificates"]


def state_names(fake):
    return sorted((c["name"] for c in fake.state()["certificates"]), key=str.lower)


def expected_pem(fake, name):
    cert = fake.certificate(name)
    ver = next(v for v in cert["versions"] if v["version"] == cert["latest"])
    return ssl.DER_cert_to_PEM_cert(base64.b64decode(ver["cer"]))


def read(m, name, f="cert.pem"):
    with open(m.p("certificates", name, f)) as fh:
        return fh.read()


def read_errno(m, name, f="cert.pem"):
    """(errno or 0, seconds) of reading one file."""
    t0 = time.monotonic()
    try:
        read(m, name, f)
        return 0, time.monotonic() - t0
    except OSError as e:
        return e.errno, time.monotonic() - t0


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM for %d" % pid)


def start_fails(fake, tmp_path, **overrides):
    """Run kvfs expecting it to refuse to mount; returns its one line."""
    opts = secret_options(fake)
    opts.update(overrides)
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    r = run_kvfs(["-f", "-o", option_string(opts), fake.info["vault_url"], str(mnt)],
                 timeout=120)
    assert r.returncode == 1, r.stderr
    assert not util.is_mounted(str(mnt))
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, r.stderr
    return lines[0]


# --- throttling -------------------------------------------------------------------

STORM_S = 20  # the 120 s storm, shortened; the behaviour is the same


def test_429_storm_without_retry_after(mount, az):
    m = mount(deadline=2)
    cached = {n: read(m, n) for n in ("www", "mail")}
    uncached = ["api", "WebFrontend", "selfsigned", "reversed-chain"] + \
        ["bulk-%03d" % i for i in range(20)]
    az.reset_log()
    az.fault(kind="429", seconds=STORM_S)
    t_end = time.monotonic() + STORM_S
    outcomes, stop = [], threading.Event()

    def reader(offset):
        i = offset
        while not stop.is_set():
            outcomes.append(read_errno(m, uncached[i % len(uncached)]))
            i += 1
            time.sleep(0.2)

    threads = [threading.Thread(target=reader, args=(0,))]
    threads[0].start()
    time.sleep(2)  # the gate knows the vault is throttling: more readers
    threads += [threading.Thread(target=reader, args=(k * 7,)) for k in (1, 2)]
    for t in threads[1:]:
        t.start()
    while time.monotonic() < t_end - 0.5:
        for name, text in cached.items():
            assert read(m, name) == text  # cached files keep working
        time.sleep(0.25)
    stop.set()
    for t in threads:
        t.join(30)

    throttled = [e for e in vault_log(az) if e["status"] == 429]
    assert 1 <= len(throttled) <= 8, [(e["path"], e["time"]) for e in throttled]
    # after the first answer, one request at a time
    for a, b in zip(throttled, throttled[1:]):
        assert b["time"] >= a["time"] + a["duration"] - 0.01
    # uncached reads failed with EIO, each within the deadline
    assert outcomes and all(e in (0, errno.EIO) for e, _ in outcomes), outcomes
    assert sum(1 for e, _ in outcomes if e == errno.EIO) >= 10
    assert max(dt for _, dt in outcomes) < 2 + 3

    # full recovery: the next permitted attempt succeeds, then everything
    deadline = time.monotonic() + 90
    while read_errno(m, "api")[0] != 0:
        assert time.monotonic() < deadline, "no recovery after the storm"
        time.sleep(0.5)
    for name in uncached:
        assert read(m, name) == expected_pem(az, name), name
    # the log: one line when the outage starts, one when it ends, one per
    # request the vault refused; the reads the gate held back add nothing
    err = m.stderr()
    assert err.count("' is failing: 429") == 1, err
    assert err.count("' answers again after") == 1, err
    assert "not sent" not in err, err
    assert 1 <= err.count("cannot get certificate") <= len(throttled), err


def test_openers_of_one_file_in_a_429_storm_all_fail_within_the_deadline(mount, az):
    """The kernel sends one LOOKUP of a name at a time: the openers queued
    behind the one whose fetch failed get its failure at once, not one
    deadline each."""
    deadline = 4
    m = mount(deadline=deadline)
    az.reset_log()
    # Retry-After: 1 keeps the next attempt within every opener's deadline,
    # so that none gives up early on its own
    az.fault(kind="429", seconds=60, retry_after=1, path="^/certificates/api/?$")
    outcomes = {}

    def opener(i):
        t0 = time.monotonic()
        try:
            open(m.p("certificates", "api", "cert.pem")).close()
            e = 0
        except OSError as x:
            e = x.errno
        outcomes[i] = (e, time.monotonic() - t0)

    n = 10
    assert util.read_concurrently(opener, list(range(n)), timeout=120) == []
    assert sorted(outcomes) == list(range(n))
    assert all(e == errno.EIO for e, _ in outcomes.values()), outcomes
    slowest = max(dt for _, dt in outcomes.values())
    assert slowest < deadline + 1.5 * util.SLOW, outcomes
    gets = bundle_gets(az, "api")
    assert gets and all(g["status"] == 429 for g in gets)
    assert len(gets) <= 6, [(g["time"], g["status"]) for g in gets]


def test_retry_after_is_honoured(mount, az):
    m = mount()
    az.reset_log()
    az.fault(kind="429", count=1, retry_after=3, path="^/certificates/api/?$")
    t0 = time.monotonic()
    assert read(m, "api") == expected_pem(az, "api")
    assert time.monotonic() - t0 < 3 + 3
    gets = bundle_gets(az, "api")
    assert [g["status"] for g in gets] == [429, 200]
    # not earlier: the fake's clock on both requests
    assert gets[1]["time"] - gets[0]["time"] >= 3.0


def test_retry_after_of_an_hour_holds_back_for_a_minute_at_most(mount, az):
    """Retry-After: 3600 closes the gate for KVFS_RETRY_AFTER_CAP_MS (60 s)
    only: a reader whose deadline outlasts the cap gets the file; cached
    files are served all along."""
    m = mount(deadline=75)
    cached = read(m, "www")
    az.reset_log()
    az.fault(kind="429", count=1, retry_after=3600, path="^/certificates/api/?$")
    result = []
    t = threading.Thread(target=lambda: result.append(read_errno(m, "api")))
    t0 = time.monotonic()
    t.start()
    served = 0
    while t.is_alive() and time.monotonic() - t0 < 90:
        assert read(m, "www") == cached
        served += 1
        time.sleep(0.5)
    t.join(30)
    assert result, "the read of api never returned"
    e, dt = result[0]
    assert e == 0, result
    assert 59 <= dt < 60 + 5, dt
    assert served >= 100
    gets = bundle_gets(az, "api")
    assert [g["status"] for g in gets] == [429, 200]
    assert 59.9 <= gets[1]["time"] - gets[0]["time"] < 62
    assert read(m, "api") == expected_pem(az, "api")


def test_one_broken_certificate_does_not_hold_back_the_others(mount, az):
    """The vault answers 500 for one certificate only while a loop re-reads
    it: that certificate fails, each read within the deadline, and the
    uncached reads of others go through at once, one GET each."""
    m = mount(deadline=3)
    az.reset_log()
    az.fault(kind="500", seconds=60, path="^/certificates/api/?$")
    stop, broken = threading.Event(), []

    def loop():
        while not stop.is_set():
            broken.append(read_errno(m, "api"))
            time.sleep(0.2)

    t = threading.Thread(target=loop)
    t.start()
    try:
        time.sleep(1.5)  # the first 500s are in
        others = ["bulk-%03d" % i for i in range(150, 165)]
        for name in others:
            e, dt = read_errno(m, name)
            assert e == 0 and dt < 2.5, (name, e, dt)  # no backoff
            time.sleep(0.3)
    finally:
        stop.set()
        t.join(30)
    assert len(broken) >= 2 and all(e == errno.EIO for e, _ in broken), broken
    assert max(dt for _, dt in broken) < 3 + 2, broken
    for name in others:
        assert [g["status"] for g in bundle_gets(az, name)] == [200], name
    gets = bundle_gets(az, "api")
    assert gets and all(g["status"] == 500 for g in gets)
    assert len(gets) <= 8 * len(broken)
    # the vault was never taken for failing
    assert "is failing" not in m.stderr(), m.stderr()


# --- transient failures during a listing and a GET ------------------------------------

def test_random_503_during_a_listing_of_several_pages(mount, az):
    # seed 26 fails the 5th and 8th draws: two pages in the middle
    az.fault(kind="503", seconds=120, p=0.1, seed=26)
    m = mount()
    names = sorted(os.listdir(m.p("certificates")), key=str.lower)
    assert names == state_names(az)  # complete and correct
    pages = list_pages(az)
    assert sum(1 for e in pages if e["status"] == 503) >= 1
    assert sum(1 for e in pages if e["status"] == 200) >= 9
    # and the bundles read through the same weather are right
    for name in names[::10]:
        if name in ("disabled-cert", "expired-cert", "future-cert"):
            continue
        assert read(m, name) == expected_pem(az, name), name
    az.clear_faults()


def test_reset_and_truncated_body_mid_listing(mount, az):
    # the second page: reset first, then cut in half, then served
    az.fault(kind="reset", count=1, path="^/certificates$", query="skiptoken")
    az.fault(kind="truncate", count=1, path="^/certificates$", query="skiptoken")
    m = mount()
    assert sorted(os.listdir(m.p("certificates")), key=str.lower) == state_names(az)
    pages = list_pages(az)
    second = [e for e in pages if "skiptoken" in e["query"]][:3]
    assert [e["query"] for e in second[1:]] == [second[0]["query"]] * 2
    assert second[0]["status"] == 0  # reset: no response

    # the same on a certificate GET: never exposed, retried
    az.reset_log()
    az.fault(kind="truncate", count=1, path="^/certificates/www/?$")
    az.fault(kind="reset", count=1, path="^/certificates/api/?$")
    assert read(m, "www") == expected_pem(az, "www")
    assert read(m, "api") == expected_pem(az, "api")
    assert len(bundle_gets(az, "www")) == 2
    assert len(bundle_gets(az, "api")) == 2


def test_malformed_json_is_retried(mount, az):
    m = mount()
    az.reset_log()
    az.fault(kind="malformed", count=1, path="^/certificates/mail/?$")
    assert read(m, "mail") == expected_pem(az, "mail")
    assert [g["status"] for g in bundle_gets(az, "mail")] == [200, 200]


def test_stalled_response_is_bounded(mount, az):
    m = mount(deadline=3)
    cached = read(m, "mail")
    az.reset_log()
    az.fault(kind="stall", count=1, path="^/certificates/www/?$")
    stalled = []
    t = threading.Thread(target=lambda: stalled.append(read_errno(m, "www")))
    t.start()
    time.sleep(0.5)
    # other reads are unaffected while www hangs: cached and uncached
    assert read(m, "mail") == cached
    e, dt = read_errno(m, "api")
    assert e == 0 and dt < 2.5
    t.join(30)
    assert stalled, "the stalled read never returned"
    e, dt = stalled[0]
    assert e == errno.EIO
    assert 2.0 <= dt < 3 + 2  # about the deadline, never a hang
    # the stall is over: once the backoff after that one failure is over
    # (at most 1 s; until then its failure is the answer, with no
    # request), the next read gets it
    time.sleep(1.2)
    assert read(m, "www") == expected_pem(az, "www")


def test_huge_body_is_capped_and_memory_bounded(mount, az):
    m = mount()
    read(m, "www")
    before = vm_hwm_kib(m.proc.pid)
    az.reset_log()
    az.fault(kind="huge", size_mb=100, count=1, path="^/certificates/api/?$")
    assert read(m, "api") == expected_pem(az, "api")  # capped, then retried
    after = vm_hwm_kib(m.proc.pid)
    assert after - before < 24 * 1024, (before, after)
    assert after < 96 * 1024, (before, after)
    assert [g["status"] for g in bundle_gets(az, "api")] == [200, 200]


def test_other_4xx_are_not_retried(mount, az):
    az.create("gone-soon", kty="EC")
    try:
        m = mount()
        az.delete("gone-soon")
        az.reset_log()
        assert read_errno(m, "gone-soon")[0] == errno.ENOENT
        assert [g["status"] for g in bundle_gets(az, "gone-soon")] == [404]
    finally:
        try:
            az.delete("gone-soon")
        except Exception:  # noqa: BLE001 - already gone
            pass


# --- hostile links --------------------------------------------------------------------

def test_nextlink_loop_is_detected(az, tmp_path):
    az.fault(kind="nextlink_loop", seconds=60, path="^/certificates$")
    line = start_fails(az, tmp_path)
    assert "loop" in line
    assert len(list_pages(az)) <= 3


def test_nextlink_loop_after_a_few_pages(az, tmp_path):
    az.fault(kind="nextlink_loop", count=1, path="^/certificates$", query="skiptoken")
    line = start_fails(az, tmp_path)
    assert "loop" in line
    assert len(list_pages(az)) <= 9 + 3


def test_foreign_nextlink_gets_no_token(az, tmp_path):
    az.reset_foreign()
    az.fault(kind="foreign_nextlink", count=1, path="^/certificates$", query="skiptoken")
    line = start_fails(az, tmp_path)
    assert "origin" in line
    assert az.foreign() == []  # not even asked, let alone with the token


def test_redirect_is_not_followed(mount, az, tmp_path):
    az.reset_foreign()
    az.fault(kind="redirect", count=1, path="^/certificates$")
    line = start_fails(az, tmp_path)
    assert "302" in line and "redirect" in line
    m = mount()
    az.fault(kind="redirect", count=1, path="^/certificates/www/?$")
    assert read_errno(m, "www")[0] == errno.EIO
    assert az.foreign() == []
    assert read(m, "www") == expected_pem(az, "www")


# --- hostile names and contents ----------------------------------------------------------

def test_hostile_names_are_skipped(mount, az):
    hostile = ["..", "a%2Fb", "a/b", "x" * 128]
    az.settings(hostile_names=hostile)
    m = mount()
    names = sorted(os.listdir(m.p("certificates")), key=str.lower)
    assert names == state_names(az)
    for name in ("a%2Fb", "x" * 128):
        with pytest.raises(OSError) as e:
            os.stat(m.p("certificates", name))
        assert e.value.errno in (errno.ENOENT, errno.ENAMETOOLONG)
    assert read(m, "www") == expected_pem(az, "www")
    err = m.stderr()
    for name in hostile:
        assert "ignoring certificate '%s'" % name in err, err


def test_malformed_cer_fails_that_certificate_only(mount, az):
    az.settings(malformed_cer={"www": "base64", "api": "der"})
    m = mount()
    az.reset_log()
    for name in ("www", "api"):
        for f in ("cert.pem", "cert.der"):
            assert read_errno(m, name, f)[0] == errno.EIO, (name, f)
    # a response that made no sense is final: one GET per look, no retry
    assert len(bundle_gets(az, "www")) == 2
    assert read(m, "mail") == expected_pem(az, "mail")
    assert sorted(os.listdir(m.p("certificates")), key=str.lower) == state_names(az)
    assert set(os.listdir(m.p("certificates", "www"))) >= {"cert.pem", "cert.der"}
    # nothing was cached: once the vault is right, so is the file
    az.settings(malformed_cer={})
    assert read(m, "www") == expected_pem(az, "www")


def test_endless_listing_stops_at_the_page_cap(az, tmp_path):
    az.fault(kind="nextlink_endless", seconds=600, path="^/certificates$")
    t0 = time.monotonic()
    line = start_fails(az, tmp_path)
    assert "more than 10000 list pages" in line
    assert len(list_pages(az)) == 10000
    assert time.monotonic() - t0 < 110
