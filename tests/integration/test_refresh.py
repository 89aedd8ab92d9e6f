"""Token refresh that nobody notices: with lifetimes shortened to seconds,
readers never see an error, tokens are fetched about once per lifetime
(not once per read), a failed refresh keeps the old token, and readers
arriving together after expiry share one token request.  These tests own a
fake Azure of their own, because they change its token lifetimes."""

import errno
import os
import signal
import threading
import time
import uuid

import pytest

import util
from client import FakeAzure
from conftest import clean_env, option_string, secret_options
from test_auth import mi_options, read_cert, token_posts

BULK = 300


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    """Shadows the session fake for this module (and so mount and az)."""
    with FakeAzure(str(tmp_path_factory.mktemp("fake-refresh")), bulk=BULK) as f:
        yield f


@pytest.fixture
def short(fake):
    def _short(seconds):
        fake.set_token_lifetime(seconds)
    yield _short
    fake.set_token_lifetime(3599)
    fake.clear_faults()


def cold_names():
    for i in range(BULK):
        yield "bulk-%03d" % i


def token_requests(az, provider):
    if provider == "imds":
        return az.log("imds")
    return token_posts(az)


@pytest.mark.parametrize("provider", ["secret", "imds"])
def test_reader_loop_across_lifetimes(mount, az, short, provider):
    lifetime, duration = 3, 12.0
    short(lifetime)
    opts = mi_options(az) if provider == "imds" else {}
    m = mount(**opts)
    names = cold_names()
    reads, errors = 0, []
    t0 = time.monotonic()
    while time.monotonic() - t0 < duration:
        name = next(names, None)
        if name is None:
            break
        try:
            read_cert(m, name)      # a cold certificate: one vault GET
            reads += 1
        except Exception as e:  # noqa: BLE001 - collected and asserted
            errors.append("%s: %r" % (name, e))
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    assert errors == []
    assert elapsed >= 3 * lifetime, "the loop must span several lifetimes"
    gets = [e for e in az.log("vault") if e["path"].startswith("/certificates/bulk-")]
    assert len(gets) == reads and reads > 100
    assert all(e["status"] == 200 for e in gets), "no request may meet an expired token"
    tokens = token_requests(az, provider)
    assert all(e["status"] == 200 for e in tokens)
    lifetimes = elapsed / lifetime
    # refreshed half-way through a short lifetime: one or two per lifetime,
    # never one per read
    assert lifetimes - 1 <= len(tokens) <= 2 * lifetimes + 2, \
        "%d token requests for %d reads over %.1f lifetimes" % (len(tokens), reads, lifetimes)
    print("\n%s: %d reads, %d token requests over %.1f s (%.1f lifetimes)"
          % (provider, reads, len(tokens), elapsed, lifetimes))


def test_failed_refresh_keeps_token_and_eight_readers_share_one_request(mount, az, short):
    lifetime = 4
    short(lifetime)
    m = mount(deadline=20)
    t0 = time.monotonic()
    az.fault(server="login", kind="500", count=1000)
    names = cold_names()

    # The background refresh (at 2 s) fails; the old token still serves.
    time.sleep(2.6 - (time.monotonic() - t0))
    read_cert(m, next(names))
    failed = [e for e in token_posts(az) if e["status"] == 500]
    assert failed, "the refresh was attempted and failed"

    # Let the token expire, then let 8 readers in at once.  The failed
    # retries before expiry (1 s, then half the time left) put the next
    # attempt up to 16 s away; deadline=20 lets the readers wait for it.
    time.sleep(max(0.0, lifetime + 0.8 - (time.monotonic() - t0)))
    az.reset_log()
    az.clear_faults()
    batch = [next(names) for _ in range(8)]
    errors = util.read_concurrently(lambda name: read_cert(m, name), batch)
    assert errors == []
    ok = [e for e in token_posts(az) if e["status"] == 200]
    assert len(ok) == 1, "8 readers at expiry: exactly one token request"
    gets = [e for e in az.log("vault") if e["path"].startswith("/certificates/bulk-")]
    assert sorted(e["path"].rsplit("/", 1)[1] for e in gets if e["status"] == 200) == \
        sorted(batch)
    assert all(e["status"] == 200 for e in gets), "no reader met an expired token"


def timed_reads(m, names, seconds):
    """Each name read in a loop by its own thread for seconds: the
    outcomes as (name, errno or 0, duration) tuples."""
    out, lock = [], threading.Lock()
    stop = time.monotonic() + seconds

    def run(name):
        while time.monotonic() < stop:
            t = time.monotonic()
            try:
                read_cert(m, name)
                e = 0
            except OSError as ex:
                e = ex.errno
            with lock:
                out.append((name, e, time.monotonic() - t))
            time.sleep(0.02)

    threads = [threading.Thread(target=run, args=(n,), daemon=True) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    assert not any(t.is_alive() for t in threads), "a reader hangs"
    return out


def test_token_storm_of_16_readers_costs_one_request_per_backoff(mount, az, short):
    """Entra down (503) and the token expired: 16 readers reading in a loop
    for 10 s send token requests one at a time, no faster than the
    backoff (1, 2, 4 ... 30 s), and fail fast meanwhile."""
    lifetime = 3
    short(lifetime)
    m = mount()
    read_cert(m)
    t0 = time.monotonic()
    az.fault(server="login", kind="503", path="/oauth2/v2.0/token", count=100000)
    time.sleep(max(0.0, lifetime + 0.5 - (time.monotonic() - t0)))
    az.reset_log()
    duration = 10.0
    names = ["bulk-%03d" % (200 + i) for i in range(16)]
    reads = timed_reads(m, names, duration)
    posts = token_posts(az)
    assert all(e["status"] == 503 for e in posts)
    # One request per second at the very most (the backoff is past 1 s by
    # now); unbounded, 16 readers send thousands.
    assert len(posts) <= duration, "%d token requests in %.0f s" % (len(posts), duration)
    times = sorted(e["time"] for e in posts)
    assert all(b - a >= 0.9 for a, b in zip(times, times[1:])), \
        "token requests closer than the backoff: %r" % times
    assert reads and all(e == errno.EIO for _, e, _ in reads), \
        "every uncached read fails with EIO: %r" % reads[:5]
    assert max(d for _, _, d in reads) <= 10 + 2, "a read waited past deadline="
    assert len(reads) > 100, "readers fail fast during the backoff (%d reads)" % len(reads)
    print("\n16 readers, %.0f s of outage: %d reads, %d token requests"
          % (duration, len(reads), len(posts)))


def test_read_succeeds_across_one_transient_503_at_renewal(mount, az, short):
    """The vault rejects the token (401) and the one token request that
    follows gets a 503: the read retries it after the backoff, within its
    deadline, and succeeds."""
    m = mount()
    read_cert(m, "www")
    az.revoke_tokens()
    az.fault(server="login", kind="503", path="/oauth2/v2.0/token", count=1)
    az.reset_log()
    t = time.monotonic()
    read_cert(m, "api")
    assert time.monotonic() - t < 10
    assert [e["status"] for e in token_posts(az)] == [503, 200]
    assert [e["status"] for e in az.log("vault")] == [401, 200]


def test_imds_retries_are_bounded_by_the_readers_deadline(mount, az, short):
    """auth=imds, IMDS answering 503 after the token expired: the refresher
    retries on IMDS's own 70 s schedule, and readers with deadline=3 fail
    with EIO within their deadline instead of waiting for it."""
    lifetime, deadline = 3, 3
    short(lifetime)
    m = mount(deadline=deadline, **mi_options(az))
    read_cert(m)
    t0 = time.monotonic()
    az.fault(server="imds", kind="503", count=100000)
    time.sleep(max(0.0, lifetime + 0.5 - (time.monotonic() - t0)))
    az.reset_log()
    names = ["bulk-%03d" % (250 + i) for i in range(8)]
    reads = timed_reads(m, names, 8.0)
    assert reads and all(e == errno.EIO for _, e, _ in reads), reads[:5]
    worst = max(d for _, _, d in reads)
    assert worst <= deadline + 1.5, "a reader waited %.1f s with deadline=%d" % (worst, deadline)
    imds = az.log("imds")
    assert imds and all(e["status"] == 503 for e in imds)
    assert len(imds) <= 8, "%d IMDS requests in 8 s" % len(imds)
    print("\nimds 503, deadline=%d: %d reads, worst %.2f s, %d IMDS requests"
          % (deadline, len(reads), worst, len(imds)))


def memory_regions(pid):
    """(start, end) of the writable mappings of pid that a core dump would
    hold: not marked MADV_DONTDUMP (the sanitizers' shadow), some of it
    resident."""
    regions, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5:
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = {"range": (lo, hi), "perms": head[1], "rss": 0}
                regions.append(cur)
            elif head[0] == "Rss:":
                cur["rss"] = int(head[1])
            elif head[0] == "VmFlags:":
                cur["dd"] = "dd" in head[1:]
    return [r["range"] for r in regions
            if "rw" in r["perms"] and r["rss"] > 0 and not r.get("dd")]


def scan_memory(pid, needles):
    """Occurrences of each of needles (bytes) in the memory of pid, read
    through /proc/PID/mem with the process stopped."""
    counts = dict.fromkeys(needles, 0)
    overlap = max(len(n) for n in needles)
    os.kill(pid, signal.SIGSTOP)
    try:
        with open("/proc/%d/mem" % pid, "rb", buffering=0) as mem:
            for lo, hi in memory_regions(pid):
                tail, pos = b"", lo
                while pos < hi:
                    mem.seek(pos)
                    try:
                        chunk = mem.read(min(hi - pos, 16 << 20))
                    except OSError:
                        break
                    buf = tail + chunk
                    for n in needles:
                        counts[n] += buf.count(n) - tail.count(n)
                    tail, pos = buf[-overlap:], pos + len(chunk)
    finally:
        os.kill(pid, signal.SIGCONT)
    return counts


def test_core_holds_no_client_secret_old_token_or_rotated_key(mount, az, short):
    """The daemon's memory, as a core dump would hold it, after several
    token refreshes and a key rotation: the client secret (read from
    secret_file= for each token request) is not in its memory, nor any
    token but the live one, nor the private key that rotation replaced.
    The key files are opened (fetched) but never read: libfuse copies each
    read into a buffer of its own that it frees unwiped (kvfs(8))."""
    name = "wipe-" + uuid.uuid4().hex[:8]
    az.create(name, kty="RSA")           # a key of its own
    short(4)                             # renewed every 2 s
    m = mount()

    def secret_line():
        status, body = az.vault_get("/secrets/" + name, az.token())
        assert status == 200
        return body["value"].splitlines()[10].encode()

    def fetch_key():
        os.close(os.open(m.p("certificates", name, "privkey.pem"), os.O_RDONLY))

    def cert():
        with open(m.p("certificates", name, "cert.pem")) as f:
            return f.read()

    old_line = secret_line()
    fetch_key()
    old_cert = cert()
    az.rotate(name)
    new_line = secret_line()
    t0, i = time.monotonic(), 0
    while time.monotonic() - t0 < 10:    # 5 refreshes, requests with each token
        with open(m.p("certificates", "bulk-%03d" % (i % 40), "privkey.pem")) as f:
            f.read()
        i += 1
        time.sleep(0.1)
    m.proc.send_signal(signal.SIGHUP)    # revalidate: the new version
    deadline = time.monotonic() + 10
    while cert() == old_cert and time.monotonic() < deadline:
        time.sleep(0.2)
    assert cert() != old_cert
    fetch_key()

    before = az.credentials()["tokens"]
    secret = az.info["apps"]["secret"]["secret"].encode()
    issued = [t.encode() for t in before]
    counts = scan_memory(m.proc.pid, [secret, old_line, new_line] + issued)
    after = az.credentials()["tokens"]
    assert after[:len(before)] == before
    # the one before[-1] is the live token, unless renewed meanwhile
    live = before[-1].encode()
    assert counts[new_line] >= 1, "the scan finds the key the daemon holds"
    assert counts[live] >= 1 or len(after) > len(before), "and the live token"
    assert counts[secret] == 0, "copies of the client secret: %d" % counts[secret]
    old = [counts[t] for t in issued if t != live]
    assert len(old) >= 4 and sum(old) == 0, "copies of old tokens: %r" % old
    assert counts[old_line] == 0, "copies of the rotated key: %d" % counts[old_line]


def test_absurd_lifetime_is_clamped_and_logged(mount, az, short):
    short(10 * 86400)
    m = mount(**mi_options(az))
    read_cert(m)
    assert "token lifetime of 864000 s; using 86400 s" in m.stderr()
    assert len(az.log("imds")) == 1


def test_refresh_runs_in_the_background_of_the_daemon(az, short, tmp_path):
    """Daemonized (no -f): the refresher lives in the forked daemon, renews
    the token while nobody reads, and a read after idle lifetimes costs no
    token request of its own."""
    lifetime = 3
    short(lifetime)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # the refresher must stop with the daemon, too
    with util.daemonized(option_string(secret_options(az)),
                         az.info["vault_url"], mnt, clean_env()):
        assert len(token_posts(az)) == 1
        time.sleep(3 * lifetime)          # nobody reads
        idle = token_posts(az)
        assert 3 <= len(idle) <= 8, "refreshed while idle: %d" % len(idle)
        # read right after a background refresh, so that the next one is
        # half a lifetime away: a token request in between is the read's own
        seen = len(token_posts(az))
        deadline = time.monotonic() + 2 * lifetime
        while len(token_posts(az)) == seen:
            assert time.monotonic() < deadline, "no refresh while idle"
            time.sleep(0.02)
        synced = time.time()
        az.reset_log()
        with open(mnt / "certificates" / "www" / "cert.pem") as f:
            assert f.read().startswith("-----BEGIN CERTIFICATE-----")
        log = az.log()
        assert [e["status"] for e in log if e["server"] == "vault"] == [200]
        own = [e for e in token_posts(az) if e["time"] - synced < lifetime / 3]
        assert own == [], "the read found a valid token waiting"
