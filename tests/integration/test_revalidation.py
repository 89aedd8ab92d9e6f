"""Revalidation: the listing is re-read every refresh= seconds
and on SIGHUP; a rotated certificate is refetched on next use and the
kernel's caches of its files are dropped, deleted certificates disappear,
new ones appear, open files keep their version; while revalidation fails,
cached files are served for up to max_stale= seconds (never past exp) and
come back when the vault does.  Vault traffic is counted from the fake's
request log; wall time is only ever bounded from above, generously.

The module has its own fake, because its tests rotate, create, delete and
break the vault."""

import base64
import errno
import math
import os
import signal
import ssl
import subprocess
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from client import FakeAzure
from util import vault_log, wait_until


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeAzure(str(tmp_path_factory.mktemp("fake-reval")), bulk=60) as f:
        yield f
        assert "Traceback" not in f.output(), f.output()


# --- helpers -------------------------------------------------------------------

def is_list_page(e):
    return e["path"].rstrip("/") == "/certificates"


def listings(log):
    """How many listings the log shows started (their first pages)."""
    return sum(1 for e in log if is_list_page(e) and "skiptoken" not in e["query"])


def pages_per_listing(fake):
    return max(1, math.ceil(len(fake.state()["certificates"]) / 25))


def bundle_gets(log, name):
    return [e for e in log
            if e["path"].strip("/").lower() == "certificates/" + name.lower()]


def secret_gets(log, name):
    return [e for e in log
            if e["path"].strip("/").lower().startswith("secrets/" + name.lower() + "/")]


def hup(m):
    m.proc.send_signal(signal.SIGHUP)


def wait_listings(fake, n, timeout=15):
    """Wait until n complete listings are in the log (all their pages)."""
    want = n * pages_per_listing(fake)
    wait_until(lambda: sum(1 for e in fake.log("vault") if is_list_page(e)) >= want,
               timeout, "%d listings" % n)


def x5t(m, name):
    return os.getxattr(m.p("certificates", name), "user.kvfs.x5t").decode()


def read(m, name, f="cert.pem"):
    with open(m.p("certificates", name, f)) as fh:
        return fh.read()


def read_elsewhere(m, name, f="cert.pem"):
    """Read in another process: this one may have the directory pinned
    to the version it saw first (KVFS_CACHE_PIN_SECONDS in cache.h)."""
    return subprocess.run(["cat", m.p("certificates", name, f)], check=True,
                          capture_output=True, text=True, timeout=30).stdout


def read_errno(m, name, f="cert.pem"):
    try:
        read(m, name, f)
        return 0
    except OSError as e:
        return e.errno


def pem_of(ver):
    return ssl.DER_cert_to_PEM_cert(base64.b64decode(ver["cer"]))


def latest(fake, name):
    cert = fake.certificate(name)
    return next(v for v in cert["versions"] if v["version"] == cert["latest"])


@pytest.fixture
def scratch(fake):
    """Certificates a test creates, deleted afterwards."""
    made = []

    def _create(name, **kw):
        fake.create(name, **kw)
        made.append(name)
        return name
    yield _create
    for name in made:
        try:
            fake.delete(name)
        except Exception:  # noqa: BLE001 - the test deleted it already
            pass


# --- what a revalidation costs ------------------------------------------------------

def test_revalidation_without_changes_costs_list_pages_only(mount, az):
    m = mount()
    warm = {n: (read(m, n), read(m, n, "privkey.pem")) for n in ("www", "mail")}
    pages = pages_per_listing(az)
    assert pages >= 3
    az.reset_log()
    hup(m)
    wait_listings(az, 1)
    log = vault_log(az)
    assert [e["status"] for e in log] == [200] * pages
    assert all(is_list_page(e) for e in log), [e["path"] for e in log]
    assert listings(log) == 1
    # nothing changed: every cached file is still cached
    az.reset_log()
    for n, (cert, key) in warm.items():
        assert read(m, n) == cert
        assert read(m, n, "privkey.pem") == key
    assert vault_log(az) == []
    assert not util_stderr_errors(m)


def util_stderr_errors(m):
    return [l for l in m.stderr().splitlines() if "cannot" in l or "error" in l]


def test_revalidation_after_one_rotation(mount, az):
    m = mount()
    old_cert, old_key = read(m, "www"), read(m, "www", "privkey.pem")
    old_st = os.stat(m.p("certificates", "www", "cert.pem"))
    api = read(m, "api")
    os.listdir(m.p("certificates", "www", "versions"))
    time.sleep(5.5)  # past this process's pin on www (cache.h)
    az.reset_log()
    rotated = az.rotate("www")
    hup(m)
    wait_listings(az, 1)
    # ls -l shows the new version's mtime (and the file's new size) once
    # the revalidation has told the kernel
    ver = latest(az, "www")
    wait_until(lambda: os.stat(m.p("certificates", "www", "cert.pem")).st_mtime
               == ver["updated"], 5, "new mtime")
    new_cert, new_key = read(m, "www"), read(m, "www", "privkey.pem")
    assert new_cert == pem_of(ver) != old_cert
    assert new_key != old_key
    st = os.stat(m.p("certificates", "www", "cert.pem"))
    assert st.st_mtime == ver["updated"] != old_st.st_mtime
    assert st.st_size == len(new_cert)
    assert os.stat(m.p("certificates", "www")).st_mtime == ver["updated"]
    assert x5t(m, "www") == rotated["x5t"]
    assert read(m, "api") == api
    names = os.listdir(m.p("certificates", "www", "versions"))
    assert rotated["version"] in names
    log = vault_log(az)
    pages = pages_per_listing(az)
    # the list pages, then exactly what the reads needed: the bundle, the
    # secret and the versions listing of www, once each; nothing of api
    assert sum(1 for e in log if is_list_page(e)) == pages
    assert len(bundle_gets(log, "www")) == 1
    assert len(secret_gets(log, "www")) == 1
    assert secret_gets(log, "www")[0]["path"].rstrip("/").endswith(rotated["version"])
    assert len([e for e in log if "/versions" in e["path"]]) == 1
    assert len(log) == pages + 3, [(e["path"], e["status"]) for e in log]
    assert all(e["status"] == 200 for e in log)


def test_rotation_shows_under_another_spelling(mount, az):
    """Names are case-insensitive: webfrontend/ is WebFrontend/, and a
    rotation shows there too, though the kernel caches it apart."""
    m = mount()
    spelled = m.p("certificates", "webfrontend", "cert.pem")

    def cat():
        return subprocess.run(["cat", spelled], check=True, capture_output=True,
                              text=True, timeout=30).stdout
    before = cat()
    assert cat() == before
    rotated = az.rotate("WebFrontend")
    hup(m)
    wait_until(lambda: x5t(m, "WebFrontend") == rotated["x5t"], 10, "rotation seen")
    after = cat()
    assert after != before
    assert after == pem_of(latest(az, "WebFrontend")) == read_elsewhere(m, "WebFrontend")


def test_disabled_certificate_closes_after_revalidation(mount, az, scratch):
    name = scratch("soon-disabled", kty="EC")
    m = mount()
    read(m, name)
    az.disable(name)
    hup(m)
    wait_until(lambda: os.stat(m.p("certificates", name, "cert.pem")).st_mode & 0o777 == 0,
               10, "mode 0000")
    assert read_errno(m, name) == errno.EACCES
    az.enable(name)
    hup(m)
    wait_until(lambda: read_errno(m, name) == 0, 10, "open again")
    assert read(m, name) == pem_of(latest(az, name))


def versions_gets(log, name):
    return [e for e in log
            if e["path"].strip("/").lower() == "certificates/%s/versions" % name.lower()]


def test_old_version_disabled_enabled_deleted_after_revalidation(mount, az, scratch):
    """An older version disabled in the vault (its certificate's latest
    untouched) closes after a revalidation, opens again once re-enabled,
    and is gone once deleted.  Each SIGHUP costs the list pages and one
    versions page, for the one certificate whose versions are cached."""
    name = scratch("old-revoked", kty="EC", content_type="pem")
    old = az.certificate(name)["latest"]
    az.rotate(name)
    m = mount()
    vdir = "%s/versions/%s" % (name, old)
    d = m.p("certificates", vdir)
    key = read(m, vdir, "privkey.pem")
    latest_key = read(m, name, "privkey.pem")
    assert os.getxattr(d, "user.kvfs.enabled") == b"true"
    pages = pages_per_listing(az)

    def sighup_costs():
        log = vault_log(az)
        assert len(versions_gets(log, name)) == 1, [e["path"] for e in log]
        assert sum(1 for e in log if is_list_page(e)) == pages
        assert len(log) == pages + 1, [e["path"] for e in log]

    az.disable_version(name, old)
    az.reset_log()
    hup(m)
    wait_until(lambda: read_errno(m, vdir, "privkey.pem") == errno.EACCES, 10,
               "the disabled version closed")
    sighup_costs()
    assert os.getxattr(d, "user.kvfs.enabled") == b"false"
    assert os.stat(os.path.join(d, "privkey.pem")).st_mode & 0o777 == 0
    # the latest version is another one, and stays as it was
    assert read(m, name, "privkey.pem") == latest_key

    az.enable_version(name, old)
    az.reset_log()
    hup(m)
    wait_until(lambda: read_errno(m, vdir, "privkey.pem") == 0, 10,
               "the version open again")
    assert read(m, vdir, "privkey.pem") == key
    assert os.getxattr(d, "user.kvfs.enabled") == b"true"
    assert bundle_gets(vault_log(az), name) == []

    az.delete_version(name, old)
    wait_listings(az, 1)
    az.reset_log()
    hup(m)
    wait_until(lambda: read_errno(m, vdir, "privkey.pem") == errno.ENOENT, 10,
               "the deleted version gone")
    assert not os.path.exists(d)
    assert old not in os.listdir(m.p("certificates", name, "versions"))
    sighup_costs()
    assert read(m, name, "privkey.pem") == latest_key


def test_oversized_listing_item_keeps_the_old_listing(mount, az, scratch):
    """A listing whose item has a field past its cap (an x5t of 100 KB;
    Key Vault's is 27 bytes) fails with a clear error, and the listing
    before it stays: files are served, a new certificate does not appear
    until a listing within the caps.  Tags of 3 MB in the listing are
    read but not kept, and do not fail it."""
    m = mount()
    pem = read(m, "www")
    new = scratch("after-oversized", kty="EC")
    az.settings(padded_items={"www": {"x5t": 100000}})
    try:
        az.reset_log()
        hup(m)
        wait_until(lambda: "'x5t' longer than 64 bytes" in m.stderr(), 10,
                   "the refusal logged")
        assert os.path.exists(m.p("certificates", "www"))
        assert new not in os.listdir(m.p("certificates"))
        assert read(m, "www") == pem
        assert bundle_gets(vault_log(az), "www") == []
    finally:
        az.settings(padded_items={"www": {"tags": 3 << 20}})
    try:
        hup(m)
        wait_until(lambda: new in os.listdir(m.p("certificates")), 15,
                   "the new certificate after a listing within the caps")
        assert read(m, "www") == pem
        assert "cannot revalidate" in m.stderr()
    finally:
        az.settings(padded_items={})


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def allocator_of(pid):
    """'asan' or 'valgrind' when the daemon's heap is theirs, else 'libc'."""
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read()
    if "libasan" in maps:
        return "asan"
    if "vgpreload" in maps:
        return "valgrind"
    return "libc"


def test_listing_tags_are_not_kept(mount, az):
    """List items whose tags fill most of a 3.5 MB page, one per page:
    three revalidations leave the daemon's RSS where it was (the tags
    were kept, twice during a revalidation: +18 MB here).  RSS measures
    what the daemon keeps only over libc's allocator: ASan and valgrind
    hold freed blocks in quarantine (256 MiB and 20 MB), so the sanitizer
    and valgrind runs leave this test to the plain suite."""
    names = sorted(c["name"] for c in az.state()["certificates"])
    pads = {n: {"tags": 3500000} for n in names[::25]}
    assert len(pads) >= 3
    m = mount(loglevel="debug")
    heap = allocator_of(m.proc.pid)
    if heap != "libc":
        pytest.skip("RSS under %s's allocator says nothing of what kvfs keeps" % heap)
    os.listdir(m.p("certificates"))
    before = vm_rss_kib(m.proc.pid)
    az.settings(padded_items=pads)
    try:
        for i in range(1, 4):
            hup(m)
            wait_until(lambda: m.stderr().count("revalidation done") == i, 60,
                       "revalidation %d done" % i)
        grown = vm_rss_kib(m.proc.pid) - before
    finally:
        az.settings(padded_items={})
    assert grown < 8 * 1024, "RSS grew by %d KiB" % grown
    assert "cannot revalidate" not in m.stderr()


# --- the tree follows the vault -------------------------------------------------------

def test_deleted_certificate_is_enoent_after_revalidation(mount, az, scratch):
    name = scratch("doomed", kty="EC")
    m = mount()
    pem = read(m, name)
    key = read(m, name, "privkey.pem")
    os.stat(m.p("certificates", name))
    held = open(m.p("certificates", name, "fullchain.pem"))
    try:
        first = held.read(10)
        az.delete(name)
        az.reset_log()
        hup(m)
        wait_until(lambda: name not in os.listdir(m.p("certificates")), 10,
                   "gone from the listing")
        for path in ((name,), (name, "cert.pem"), (name, "versions")):
            with pytest.raises(FileNotFoundError):
                os.stat(m.p("certificates", *path))
        with pytest.raises(FileNotFoundError):
            read(m, name)
        with pytest.raises(FileNotFoundError):
            os.listdir(m.p("certificates", name))
        # the open file keeps its version to the end
        rest = held.read()
        assert (first + rest).startswith(pem)
        assert os.fstat(held.fileno()).st_size == len(first + rest)
    finally:
        held.close()
    assert key.startswith("-----BEGIN PRIVATE KEY-----")
    log = vault_log(az)
    assert all(is_list_page(e) for e in log), [e["path"] for e in log]


def test_new_certificate_appears_after_sighup(mount, az, scratch):
    m = mount()
    before = os.listdir(m.p("certificates"))
    az.reset_log()
    name = scratch("newborn", kty="EC")
    assert name not in before
    hup(m)
    wait_until(lambda: name in os.listdir(m.p("certificates")), 10, "listed")
    assert read(m, name) == pem_of(latest(az, name))
    log = vault_log(az)
    assert sum(1 for e in log if is_list_page(e)) == pages_per_listing(az)
    assert len(bundle_gets(log, name)) == 1
    assert len(log) == pages_per_listing(az) + 1


def test_sighups_share_one_listing_at_a_time(mount, az):
    m = mount()
    az.reset_log()
    for _ in range(20):
        hup(m)
    wait_listings(az, 1)
    log = vault_log(az)
    pages = pages_per_listing(az)
    # 20 signals at once: one listing, perhaps one more for those that
    # came while it ran, and never two at a time
    n = listings(log)
    assert 1 <= n <= 2, n
    queries = [e["query"] for e in log if is_list_page(e)]
    assert len(queries) == n * pages
    assert queries == queries[:pages] * n, "listings interleaved"
    assert m.proc.poll() is None, "SIGHUP must not stop the daemon"


def test_refresh_timer_revalidates_without_sighup(mount, az):
    m = mount(refresh=2)
    old = x5t(m, "www")
    read(m, "www")
    az.reset_log()
    t0 = time.monotonic()
    rotated = az.rotate("www")
    assert rotated["x5t"] != old
    wait_until(lambda: x5t(m, "www") == rotated["x5t"], 20, "rotation seen")
    assert read_elsewhere(m, "www") == pem_of(latest(az, "www"))
    # the timer, idle: one revalidation every 1.6 to 2.4 s
    time.sleep(6)
    elapsed = time.monotonic() - t0
    log = vault_log(az)
    n = listings(log)
    assert 2 <= n <= elapsed / 1.6 + 1, (n, elapsed)
    # whole listings one after another; the timer keeps running, so the
    # last one may still be on its way when the log is read
    queries = [e["query"] for e in log if is_list_page(e)]
    pages = pages_per_listing(az)
    assert (n - 1) * pages < len(queries) <= n * pages, (len(queries), n)
    assert queries == (queries[:pages] * n)[:len(queries)], "listings interleaved"
    assert len(bundle_gets(log, "www")) == 1


# --- rotation under load ----------------------------------------------------------------

READERS = 8
ROTATIONS = 50
FILES = ("cert.pem", "privkey.pem", "fullchain.pem", "bundle.pem")


# One process (the shell) opens the four files one after the other, with
# pauses in between and before it reads them, as a server that loads its
# certificate and then its key: rotations land between the opens and
# between an open and its reads.
READER = """
exec 3<"$1"; sleep 0.004
exec 4<"$2"; exec 5<"$3"; sleep 0.004
exec 6<"$4"; sleep 0.008
cat <&3 && echo '#####' && cat <&4 && echo '#####' && cat <&5 && echo '#####' && cat <&6
"""


def read_directory_in_one_process(d):
    """The four files of d as one process saw them, or (None, error)."""
    paths = [os.path.join(d, f) for f in FILES]
    r = subprocess.run(["sh", "-c", READER, "sh"] + paths,
                       capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        return None, r.stderr
    parts = r.stdout.split("#####\n")
    if len(parts) != len(FILES):
        return None, "cannot split %r" % r.stdout
    return tuple(parts), None


def pem_blocks(text):
    blocks, cur = [], None
    for line in text.splitlines(keepends=True):
        if line.startswith("-----BEGIN "):
            cur = [line]
        elif cur is not None:
            cur.append(line)
            if line.startswith("-----END "):
                blocks.append("".join(cur))
                cur = None
    assert cur is None, "a PEM block cut short"
    assert "".join(blocks) == text, "bytes outside PEM blocks"
    return blocks


def check_one_version(parts, versions):
    """cert.pem is one whole version's certificate, the key is its key,
    fullchain.pem starts with it and bundle.pem is key + fullchain."""
    cert, key, fullchain, bundle = parts
    assert cert in versions, "cert.pem is no version's certificate"
    assert [b for b in pem_blocks(key)] == [key]
    chain = pem_blocks(fullchain)
    assert chain[0] == cert and len(chain) == 2
    assert bundle == key + fullchain
    leaf = x509.load_pem_x509_certificate(cert.encode())
    priv = serialization.load_pem_private_key(key.encode(), None)
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    assert priv.public_key().public_bytes(enc, pub) == \
        leaf.public_key().public_bytes(enc, pub), "privkey.pem does not match cert.pem"


def test_rotation_under_eight_readers_fifty_times(mount, az, scratch):
    name = scratch("spinning", kty="RSA")
    m = mount()
    d = m.p("certificates", name)
    seen, errors, stop = {}, [], threading.Event()
    lock = threading.Lock()

    def reader():
        while not stop.is_set():
            parts, err = read_directory_in_one_process(d)
            with lock:
                if parts is None:
                    errors.append(err)
                else:
                    seen[parts] = seen.get(parts, 0) + 1

    threads = [threading.Thread(target=reader) for _ in range(READERS)]
    for t in threads:
        t.start()
    try:
        for _ in range(ROTATIONS):
            rotated = az.rotate(name)
            hup(m)
            wait_until(lambda: x5t(m, name) == rotated["x5t"], 15,
                       "rotation to %s seen" % rotated["version"])
            # let every reader go round at least once on this version
            with lock:
                total = sum(seen.values())
            wait_until(lambda: sum(seen.values()) >= total + READERS, 15,
                       "readers going round")
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert errors == []
    versions = {pem_of(v) for v in az.certificate(name)["versions"]}
    assert len(versions) == ROTATIONS + 1
    for parts in seen:
        check_one_version(parts, versions)
    reads = sum(seen.values())
    distinct = {parts[0] for parts in seen}
    print("\n%d reads of 4 files by %d readers, %d versions seen"
          % (reads, READERS, len(distinct)))
    assert len(distinct) >= ROTATIONS // 2, "the readers saw the rotations"
    assert reads >= ROTATIONS * READERS
    # one bundle and one secret per version, plus one each time a reader
    # fetched the new version before the listing said it changed
    log = vault_log(az)
    assert ROTATIONS <= len(bundle_gets(log, name)) <= 2 * (ROTATIONS + 1)
    assert ROTATIONS <= len(secret_gets(log, name)) <= 2 * (ROTATIONS + 1)


# --- a process's opens of one directory: one version (pins) ---------------------------------

# Opens the file named on each line of stdin, in the directory argv[1], and
# answers with its bytes in base64: one long-lived process whose every open
# the test times.
OPENER = r"""
import base64, sys
for line in sys.stdin:
    with open(sys.argv[1] + "/" + line.strip(), "rb") as f:
        data = f.read()
    sys.stdout.write(base64.b64encode(data).decode() + "\n")
    sys.stdout.flush()
"""


class Opener:
    def __init__(self, m, name):
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", "-c", OPENER, m.p("certificates", name)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def open(self, f):
        self.proc.stdin.write(f + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, "the opener died"
        return base64.b64decode(line).decode()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(10)


def key_matches(fullchain, privkey):
    leaf = x509.load_pem_x509_certificate(pem_blocks(fullchain)[0].encode())
    priv = serialization.load_pem_private_key(privkey.encode(), None)
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    return priv.public_key().public_bytes(enc, pub) == \
        leaf.public_key().public_bytes(enc, pub)


PIN_S = 5  # KVFS_CACHE_PIN_SECONDS
STEP_S = 1.5  # a process's opens of fullchain.pem, this far apart
GAP_S = 2.5  # from its last fullchain.pem to its privkey.pem


def test_pin_covers_every_open_of_a_sequence(mount, az, scratch):
    """One long-lived process per certificate opens fullchain.pem every
    STEP_S seconds and, GAP_S after its last one, privkey.pem; the
    certificate rotates (and the mount revalidates) between those two opens,
    at a different phase of the pin for each: right after the first open,
    inside the first PIN_S, across its end, and long after.  Every key
    matches the certificate opened before it, both of the old version: each
    open of fullchain.pem starts a sequence afresh (the process opened it
    before), and the pin it takes covers the privkey.pem that follows.
    After a pause longer than the pin, the same process gets the new
    version."""
    phases = [0.0, 1.5, 3.0, 4.5, 6.0, 7.5]
    names = [scratch("pinned-%d" % i, kty="EC") for i in range(len(phases))]
    m = mount()
    hup(m)  # the new names are in the listing
    for n in names:
        wait_until(lambda: os.path.exists(m.p("certificates", n)), 15, n)
    old = {n: pem_of(latest(az, n)) for n in names}
    openers = {n: Opener(m, n) for n in names}
    try:
        events = []  # (when, name, what)
        for n, ph in zip(names, phases):
            k = 0
            while k * STEP_S <= ph:
                events.append((k * STEP_S, n, "fullchain.pem"))
                k += 1
            events.append((ph + 0.01, n, "rotate"))
            events.append((ph + GAP_S, n, "privkey.pem"))
        events.sort(key=lambda e: (e[0], e[2] != "fullchain.pem"))
        last_chain, opened_at, rotated = {}, {}, {}
        t0 = time.monotonic()
        for when, n, what in events:
            time.sleep(max(0.0, t0 + when - time.monotonic()))
            if what == "rotate":
                r = az.rotate(n)
                rotated[n] = r
                hup(m)
                wait_until(lambda: x5t(m, n) == r["x5t"], 15, "rotation of " + n)
                continue
            now = time.monotonic()
            if n in opened_at:
                # the schedule held: no two opens a pin's length apart
                assert now - opened_at[n] < PIN_S - 0.5, (n, what, now - opened_at[n])
            opened_at[n] = now
            text = openers[n].open(what)
            if what == "fullchain.pem":
                last_chain[n] = text
                continue
            assert pem_blocks(last_chain[n])[0] == old[n], n
            assert key_matches(last_chain[n], text), \
                "%s: privkey.pem of another version than fullchain.pem " \
                "(rotation %.1f s into the sequence)" % (n, phases[names.index(n)])
        # another process sees the new version meanwhile
        for n in names:
            assert read_elsewhere(m, n).startswith(pem_of(latest(az, n)))
        # after a pause longer than the pin, the new version, whole
        time.sleep(PIN_S + 0.5)
        for n in names:
            chain = openers[n].open("fullchain.pem")
            assert pem_blocks(chain)[0] == pem_of(latest(az, n)) != old[n]
            assert key_matches(chain, openers[n].open("privkey.pem"))
    finally:
        for o in openers.values():
            o.close()


# --- when the vault fails: max_stale ----------------------------------------------------------

def failed_listings(fake):
    return [e for e in fake.log("vault") if is_list_page(e) and e["status"] != 200]


def test_outage_serves_cached_files_and_fails_uncached(mount, az):
    m = mount(refresh=1, deadline=2)
    cached = {n: read(m, n) for n in ("www", "mail")}
    key = read(m, "www", "privkey.pem")
    az.reset_log()
    # the outage outlasts the loop by more than one pass of it (three cached
    # reads and a deadline of 2 s), however slow the build
    az.fault(kind="503", seconds=15)
    t_end = time.monotonic() + 8
    wait_until(lambda: failed_listings(az), 5, "a failed revalidation")
    outcomes = []
    while time.monotonic() < t_end:
        for n, text in cached.items():
            assert read(m, n) == text  # cached files keep working
        assert read(m, "www", "privkey.pem") == key
        outcomes.append(read_errno(m, "api"))
        time.sleep(0.3)
    assert outcomes and set(outcomes) == {errno.EIO}, outcomes
    # recovery without help
    wait_until(lambda: read_errno(m, "api") == 0, 90, "api readable again", step=0.5)
    assert read(m, "api") == pem_of(latest(az, "api"))
    for n, text in cached.items():
        assert read(m, n) == text
    # one line when revalidation starts failing, one when it works again
    wait_until(lambda: "revalidated the certificates again after" in m.stderr(), 10,
               "the notice of recovery")
    err = m.stderr()
    assert err.count("cannot revalidate the certificates") == 1, err
    assert err.count("revalidated the certificates again after") == 1, err
    assert "not served" not in err


def test_tiny_max_stale_turns_eio_and_comes_back(mount, az):
    m = mount(refresh=1, max_stale=2, deadline=2)
    text = read(m, "www")
    # a revalidation after the read, so that both are fresh
    az.reset_log()
    wait_listings(az, 1)
    az.reset_log()
    az.fault(kind="503", seconds=12)
    wait_until(lambda: read_errno(m, "www") == errno.EIO, 20, "EIO past max_stale")
    # refused for the vault's failures, not before one was seen
    assert failed_listings(az), "EIO with no failed revalidation"
    assert "certificate 'www': not served, the vault has not confirmed it" in m.stderr()
    assert read_errno(m, "mail") == errno.EIO  # uncached: EIO as well
    # the vault comes back: so does the cached file, confirmed by a listing
    wait_until(lambda: read_errno(m, "www") == 0, 90, "www back", step=0.5)
    assert read(m, "www") == text
    log = vault_log(az)
    assert bundle_gets(log, "www") == [], "no refetch: the listing confirmed it"
    assert "revalidated the certificates again after" in m.stderr()


def test_stale_files_are_never_served_past_exp(mount, az, scratch):
    exp = int(time.time()) + 8
    name = scratch("short-lived", kty="EC", exp=exp)
    m = mount(refresh=1, deadline=2, allow_expired=True)
    text = read(m, name)
    az.fault(kind="503", seconds=60)
    wait_until(lambda: failed_listings(az), 5, "a failed revalidation")
    assert read(m, name) == text  # stale, but before exp
    wait_until(lambda: read_errno(m, name) == errno.EIO, 20, "EIO at exp")
    assert time.time() >= exp
    assert "not served, it expired while the vault cannot be reached" in m.stderr()
    # allow_expired with a vault that answers: served again
    az.clear_faults()
    wait_until(lambda: read_errno(m, name) == 0, 90, "served after exp", step=0.5)
    assert read(m, name) == text
