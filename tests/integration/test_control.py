""".kvfs/status and .kvfs/metrics: parsed and checked against the fake's
request log and state.  Every mount is a fresh daemon, so its counters
start at zero and the log (reset by the az fixture) holds exactly the
requests the daemon made since it started."""

import collections
import errno
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import clean_env, option_string, secret_options
from test_auth import appservice_env, arc_env, mi_options
import util

NOBODY = 65534
OTHER = 1  # "daemon" on Debian: neither root nor nobody


# ---- a tiny parser of the Prometheus text exposition format ----

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_labels(text):
    labels, pos = {}, 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        assert m, "bad labels: %r" % text
        value = re.sub(r'\\(.)', lambda e: "\n" if e.group(1) == "n"
                       else e.group(1), m.group(2))
        labels[m.group(1)] = value
        pos = m.end()
    return labels


def parse_metrics(text):
    """{name: {frozenset(labels.items()): value}} and {name: type}; checks
    the format on the way: a TYPE (and HELP) before any sample of a
    name, names prefixed kvfs_, numbers for values."""
    assert text.endswith("\n")
    samples = collections.defaultdict(dict)
    types, helps = {}, set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name = line.split(" ", 3)[2]
            assert name not in helps, "HELP twice for " + name
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge"), line
            assert name not in types, "TYPE twice for " + name
            types[name] = kind
            continue
        assert not line.startswith("#") and line.strip(), repr(line)
        m = SAMPLE.match(line)
        assert m, "not a sample: %r" % line
        name, labels, value = m.group(1), m.group(2) or "", m.group(3)
        assert name.startswith("kvfs_"), name
        assert name in types and name in helps, "no TYPE/HELP for " + name
        key = frozenset(parse_labels(labels).items())
        assert key not in samples[name], "sample twice: " + line
        samples[name][key] = float(value)
    for name, kind in types.items():
        if kind == "counter":
            assert name.endswith("_total"), name
    return samples, types


def value(samples, metric, **labels):
    return samples.get(metric, {}).get(frozenset(labels.items()), 0)


def read_metrics(m):
    with open(m.p(".kvfs", "metrics")) as f:
        return parse_metrics(f.read())[0]


def read_status(m):
    with open(m.p(".kvfs", "status")) as f:
        return json.load(f)


# ---- the fake's log, labelled the way the metrics are ----

def endpoint_of(entry):
    path = entry["path"]
    parts = [p for p in path.split("/") if p]
    if entry["server"] == "login":
        if path.endswith("/.well-known/openid-configuration"):
            return "discovery"
        if path.endswith("/oauth2/v2.0/token"):
            return "token"
        return "other"
    if entry["server"] in ("imds", "arc"):
        return "imds"
    if entry["server"] == "appservice":
        return "identity"
    if entry["server"] != "vault":
        return "other"
    if parts == ["certificates"]:
        return "list"
    if parts[:1] == ["certificates"] and len(parts) == 3 and \
            parts[2] == "versions":
        return "versions"
    if parts[:1] == ["certificates"] and len(parts) in (2, 3):
        return "certificate"
    if parts[:1] == ["secrets"] and len(parts) in (2, 3):
        return "secret"
    return "other"


def log_counts(az):
    return collections.Counter((endpoint_of(e), str(e["status"]))
                               for e in az.log())


def metric_counts(samples):
    return collections.Counter({
        (dict(k)["endpoint"], dict(k)["code"]): int(v)
        for k, v in samples.get("kvfs_requests_total", {}).items()})


def assert_requests_match(m, az):
    """The request counters equal the fake's log.  The fake records a
    request after it has answered it, so its log may lag the daemon's
    counters by a moment."""
    deadline = time.monotonic() + 5
    while True:
        got = metric_counts(read_metrics(m))
        want = log_counts(az)
        if got == want or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert got == want
    return got


def read(path, mode="rb"):
    with open(path, mode) as f:
        return f.read()


# ---- status ----

def test_status_is_json_about_the_mount(mount, az):
    t0 = time.time()
    m = mount()
    t1 = time.time()
    st = read_status(m)

    assert st["vault"] == az.info["vault_url"]
    assert st["mountpoint"] == m.path
    assert st["provider"] == "secret"
    assert "auth=secret" in st["provider_reason"]
    assert st["certificates"] == len(az.state()["certificates"])
    assert st["filtered"] == 0
    assert st["collections"] == {"certificates": {
        "objects": st["certificates"], "filtered": 0,
        "last_listing": st["last_refresh"],
        "last_error": None, "last_error_at": None}}
    assert st["last_error"] is None and st["last_error_at"] is None
    assert st["vault_state"] == "healthy"
    assert st["vault_consecutive_failures"] == 0
    assert int(t0) <= st["last_refresh"] <= t1
    assert int(t0) <= st["mounted_at"] <= t1
    assert st["pid"] == m.proc.pid

    # The token: the one the fake issued at mount time, with the fake's
    # default lifetime (3599 s).
    tokens = [e for e in az.log(server="login") if endpoint_of(e) == "token"]
    assert len(tokens) == 1 and tokens[0]["status"] == 200
    assert st["token_expires_at"] > time.time()
    assert abs(st["token_expires_at"] - (tokens[0]["time"] + 3599)) <= 2
    assert int(t0) <= st["token_refreshed_at"] <= t1


def test_status_mounted_at_is_the_root_time(mount):
    # One reading of the mount's time: status says it, and it is the
    # mtime and ctime of the mount's root and the mtime of .kvfs/.
    m = mount()
    st = read_status(m)
    root = os.stat(m.path)
    assert root.st_mtime == st["mounted_at"]
    assert root.st_ctime == st["mounted_at"]
    assert os.stat(m.p(".kvfs")).st_mtime == st["mounted_at"]


def test_status_is_one_snapshot_per_open(mount, az):
    m = mount()
    fd = os.open(m.p(".kvfs", "status"), os.O_RDONLY)
    try:
        head = os.read(fd, 10)
        # the daemon's counters move while the file is open...
        read(m.p("certificates", "www", "cert.pem"))
        time.sleep(1.1)
        rest = b""
        while True:
            chunk = os.read(fd, 7)
            if not chunk:
                break
            rest += chunk
        # ...and the open file keeps the text it was opened with
        snap = json.loads(head + rest)
        assert os.fstat(fd).st_size in (0, len(head + rest))
    finally:
        os.close(fd)
    assert snap["now"] < read_status(m)["now"]


def test_last_error_stays_the_vaults_during_an_outage(mount, az):
    # revalidation every second and reads every 0.3 s while the vault
    # answers 503: the gate holds most of them back, and what it held back
    # ("not sent") neither replaces the vault's own error nor is logged
    m = mount(refresh=1, deadline=2)
    az.reset_log()
    az.fault(kind="503", seconds=15)
    t_end = time.monotonic() + 8
    while time.monotonic() < t_end:
        with pytest.raises(OSError):  # not cached: EIO
            read(m.p("certificates", "api", "cert.pem"))
        time.sleep(0.3)
    # ~27 reads and ~8 revalidations in the 8 s; the gate's backoff (1, 2,
    # 4, 8 s caps, one request at a time) lets a handful through
    sent = [e for e in az.log("vault") if e["status"] == 503]
    assert 1 <= len(sent) < 15, "the gate held most requests back: %d" % len(sent)
    st = read_status(m)
    assert "503" in st["last_error"], st["last_error"]
    assert "not sent" not in st["last_error"]
    assert st["vault_state"] != "healthy"
    assert "not sent" not in m.stderr()


def test_last_error_names_a_failed_read(mount, az):
    m = mount()
    az.fault(kind="404", path="^/certificates/api/?$", count=1)
    with pytest.raises(FileNotFoundError):
        read(m.p("certificates", "api", "cert.pem"))
    st = read_status(m)
    assert st["last_error"] is not None
    assert "'api'" in st["last_error"]
    assert "404" in st["last_error"]
    assert "Not Found" in st["last_error"]
    assert st["last_error_at"] >= st["mounted_at"]
    assert "Bearer" not in st["last_error"] and "eyJ" not in st["last_error"]
    # a retried 500 is an error met, and the vault is healthy again after
    az.fault(kind="500", path="^/certificates/www/?$", count=1)
    assert read(m.p("certificates", "www", "cert.der"))
    st = read_status(m)
    assert "500" in st["last_error"] and m.path not in st["last_error"]
    assert st["vault_state"] == "healthy"
    for tok in az.credentials()["tokens"]:
        assert tok not in json.dumps(st)


# ---- metrics ----

def test_request_counters_equal_the_fake_log(mount, az):
    m = mount()
    # start-up: discovery, token, the list pages
    got = assert_requests_match(m, az)
    pages = -(-len(az.state()["certificates"]) // 25)
    assert got[("list", "200")] == pages
    assert got[("token", "200")] == 1
    assert got[("discovery", "200")] == 1

    # a known sequence: two bundles, a secret, a versions listing, a miss
    read(m.p("certificates", "www", "cert.pem"))
    read(m.p("certificates", "www", "privkey.pem"))
    read(m.p("certificates", "mail", "cert.der"))
    versions = os.listdir(m.p("certificates", "mail", "versions"))
    assert len(versions) == 3
    az.fault(kind="404", path="^/certificates/api/?$", count=1)
    with pytest.raises(FileNotFoundError):
        read(m.p("certificates", "api", "cert.pem"))
    got = assert_requests_match(m, az)
    assert got[("certificate", "200")] == 2
    assert got[("certificate", "404")] == 1
    assert got[("secret", "200")] == 1
    assert got[("versions", "200")] == 1


PROVIDERS = {
    # provider: (mount options, environment, daemon)
    "imds": (lambda az: mi_options(az), lambda az: None, None),
    "appservice": (lambda az: mi_options(az), appservice_env, None),
    "arc": (lambda az: mi_options(az), arc_env, util.testhooks_binary),
    # the tenant from the vault's 401 challenge
    "secret": (lambda az: {"tenant": None}, lambda az: None, None),
}


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_identity_requests_are_counted(mount, az, provider):
    opts, env, binary = PROVIDERS[provider]
    m = mount(env=env(az), binary=binary() if binary else None, **opts(az))
    read(m.p("certificates", "www", "cert.pem"))
    assert read_status(m)["provider"] == provider
    got = assert_requests_match(m, az)
    want = {
        "imds": {("imds", "200"): 1},
        "appservice": {("identity", "200"): 1},
        # Arc's challenge, then the request with the key
        "arc": {("imds", "401"): 1, ("imds", "200"): 1},
        # the unauthenticated first request, then discovery and token
        "secret": {("list", "401"): 1, ("discovery", "200"): 1,
                   ("token", "200"): 1},
    }[provider]
    for key, n in want.items():
        assert got[key] == n, (key, got)


def test_retries_and_throttling_are_counted(mount, az):
    m = mount()
    az.fault(kind="429", path="^/certificates/www/?$", count=1, retry_after=1)
    az.fault(kind="503", path="^/certificates/mail/?$", count=1)
    read(m.p("certificates", "www", "cert.pem"))
    read(m.p("certificates", "mail", "cert.pem"))
    got = assert_requests_match(m, az)
    assert got[("certificate", "429")] == 1
    assert got[("certificate", "503")] == 1
    s = read_metrics(m)
    assert value(s, "kvfs_throttled_total") == 1
    assert value(s, "kvfs_retries_total") == 2
    assert value(s, "kvfs_vault_consecutive_failures") == 0


def test_token_retries_are_counted_apart(mount, az):
    # IMDS is updating (410), then answers: one token request repeated,
    # and no vault request counted as a retry
    az.fault(server="imds", kind="410", count=1)
    m = mount(**mi_options(az))
    read(m.p("certificates", "www", "cert.pem"))
    assert [e["status"] for e in az.log("imds")] == [410, 200]
    s = read_metrics(m)
    assert value(s, "kvfs_token_retries_total") == 1
    assert value(s, "kvfs_retries_total") == 0
    assert value(s, "kvfs_requests_total", endpoint="imds", code="410") == 1


def test_cache_hits_and_misses(mount, az):
    m = mount()
    s = read_metrics(m)
    for obj in ("certificate", "versions", "secret"):
        assert value(s, "kvfs_cache_misses_total", object=obj) == 0
        assert value(s, "kvfs_cache_hits_total", object=obj) == 0

    read(m.p("certificates", "www", "cert.pem"))
    s = read_metrics(m)
    assert value(s, "kvfs_cache_misses_total", object="certificate") == 1
    hits = value(s, "kvfs_cache_hits_total", object="certificate")

    # another file of the same version: from the cache, no request
    az.reset_log()
    read(m.p("certificates", "www", "cert.der"))
    s = read_metrics(m)
    assert value(s, "kvfs_cache_misses_total", object="certificate") == 1
    assert value(s, "kvfs_cache_hits_total", object="certificate") > hits
    assert az.log(server="vault") == []

    # the secret: one miss, then hits for the other files it makes
    read(m.p("certificates", "www", "privkey.pem"))
    s = read_metrics(m)
    assert value(s, "kvfs_cache_misses_total", object="secret") == 1
    secret_hits = value(s, "kvfs_cache_hits_total", object="secret")
    read(m.p("certificates", "www", "fullchain.pem"))
    s = read_metrics(m)
    assert value(s, "kvfs_cache_misses_total", object="secret") == 1
    assert value(s, "kvfs_cache_hits_total", object="secret") > secret_hits

    os.listdir(m.p("certificates", "mail", "versions"))
    s = read_metrics(m)
    assert value(s, "kvfs_cache_misses_total", object="versions") == 1
    # misses are exactly the GETs the cache made
    gets = collections.Counter(endpoint_of(e) for e in az.log(server="vault"))
    assert gets["secret"] == 1 and gets["versions"] == 1


def test_bytes_served_count_what_reaches_the_daemon(mount, az):
    m = mount()
    files = [("www", "cert.pem"), ("www", "privkey.pem"),
             ("mail", "fullchain.pem"), ("api", "cert.pfx")]
    total = 0
    for name, f in files:
        total += len(read(m.p("certificates", name, f)))
    s = read_metrics(m)
    assert value(s, "kvfs_read_bytes_total") == total

    # warm reads come from the page cache and never reach the daemon
    for name, f in files:
        read(m.p("certificates", name, f))
    assert value(read_metrics(m), "kvfs_read_bytes_total") == total

    # .kvfs/ itself is not counted
    read(m.p(".kvfs", "status"))
    assert value(read_metrics(m), "kvfs_read_bytes_total") == total


def test_expiry_gauges_equal_the_fake(mount, az):
    m = mount()
    text = read(m.p(".kvfs", "metrics"), "r")
    s, types = parse_metrics(text)
    now = time.time()
    certs = az.state()["certificates"]
    assert value(s, "kvfs_certificates") == len(certs)
    assert types["kvfs_certificate_expiry_timestamp_seconds"] == "gauge"
    for c in certs:
        assert value(s, "kvfs_certificate_expiry_timestamp_seconds",
                     name=c["name"]) == c["exp"], c["name"]
        left = value(s, "kvfs_certificate_expires_in_seconds", name=c["name"])
        assert abs(left - (c["exp"] - now)) <= 2, c["name"]
    assert value(s, "kvfs_certificate_expires_in_seconds",
                 name="expired-cert") < 0
    st = read_status(m)
    assert value(s, "kvfs_token_expiry_timestamp_seconds") == \
        st["token_expires_at"]
    assert 3500 < value(s, "kvfs_token_expires_in_seconds") <= 3599
    assert value(s, "kvfs_last_refresh_timestamp_seconds",
                 collection="certificates") == st["last_refresh"]
    assert value(s, "kvfs_objects", collection="certificates") == len(certs)
    assert value(s, "kvfs_filtered_objects", collection="certificates") == 0
    assert value(s, "kvfs_listing_failing", collection="certificates") == 0
    assert value(s, "kvfs_listings_total", collection="certificates") == 1
    assert value(s, "kvfs_listing_errors_total", collection="certificates") == 0
    # a collection the mount does not show has no gauge
    assert "secrets" not in {dict(k).get("collection") for k in s["kvfs_objects"]}
    assert value(s, "kvfs_start_time_seconds") == st["mounted_at"]


# ---- the directory: modes, owner, read-only ----

def test_modes_owner_and_listing(mount, az):
    m = mount()
    assert ".kvfs" in os.listdir(m.path)
    st = os.stat(m.p(".kvfs"))
    assert oct(st.st_mode & 0o7777) == oct(0o500)
    assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    assert sorted(os.listdir(m.p(".kvfs"))) == ["audit", "events", "metrics", "status"]
    for f in ("status", "metrics", "audit", "events"):
        st = os.stat(m.p(".kvfs", f))
        assert oct(st.st_mode & 0o7777) == oct(0o400)
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
    with pytest.raises(FileNotFoundError):
        os.stat(m.p(".kvfs", "nothing"))
    with pytest.raises(NotADirectoryError):
        os.stat(m.p(".kvfs", "status", "x"))
    with pytest.raises(NotADirectoryError):
        os.listdir(m.p(".kvfs", "status"))


@pytest.mark.parametrize("op", [
    lambda p: open(os.path.join(p, "status"), "w"),
    lambda p: open(os.path.join(p, "status"), "a"),
    lambda p: os.open(os.path.join(p, "new"), os.O_CREAT | os.O_WRONLY),
    lambda p: os.unlink(os.path.join(p, "status")),
    lambda p: os.mkdir(os.path.join(p, "d")),
    lambda p: os.rmdir(p),
    lambda p: os.chmod(os.path.join(p, "status"), 0o644),
    lambda p: os.rename(os.path.join(p, "status"), os.path.join(p, "s")),
    lambda p: os.truncate(os.path.join(p, "metrics"), 0),
])
def test_writes_are_erofs(mount, az, op):
    m = mount()
    with pytest.raises(OSError) as e:
        op(m.p(".kvfs"))
    assert e.value.errno == errno.EROFS


READER = r"""
import errno, json, os, sys
out = {}
for p in sys.argv[1:]:
    try:
        with open(p) as f:
            out[p] = len(f.read())
    except OSError as e:
        out[p] = errno.errorcode[e.errno]
print(json.dumps(out))
"""


def read_as(uid, paths):
    r = subprocess.run(["/usr/bin/python3", "-c", READER] + paths,
                       user=uid, group=uid, extra_groups=[], cwd="/",
                       env={"PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def open_dir():
    """A mount point other users can reach (pytest's are inside root's
    0700 directories)."""
    d = tempfile.mkdtemp(prefix="kvfs-test-control-")
    os.chmod(d, 0o755)
    yield d
    util.umount(d)
    shutil.rmtree(d, ignore_errors=True)


def mount_on(az, path, **extra):
    opts = secret_options(az)
    opts.update(extra)
    err = path + ".stderr"
    with open(err, "w") as f:
        proc = subprocess.Popen(
            [util.kvfs_binary(), "-f", "-o", option_string(opts),
             az.info["vault_url"], path],
            env=clean_env(), stdin=subprocess.DEVNULL, stdout=f, stderr=f)
    m = util.Mount(proc, path, err)
    try:
        util.wait_for_mount(proc, path, stderr_path=err)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return m


def test_only_the_owner_reads_with_allow_other(az, open_dir):
    mnt = os.path.join(open_dir, "mnt")
    os.mkdir(mnt, 0o755)
    # the files belong to nobody (uid=): nobody reads them; another user
    # reaches the mount (cert.pem is 0444) but not .kvfs/
    m = mount_on(az, mnt, allow_other=True, uid=str(NOBODY),
                 gid=str(NOBODY))
    try:
        st = os.stat(m.p(".kvfs", "status"))
        assert (st.st_uid, st.st_gid) == (NOBODY, NOBODY)
        paths = [m.p("certificates", "www", "cert.pem"),
                 m.p(".kvfs", "status"), m.p(".kvfs", "metrics")]
        other = read_as(OTHER, paths)
        assert other[paths[0]] > 0, other
        assert other[paths[1]] == "EACCES", other
        assert other[paths[2]] == "EACCES", other
        owner = read_as(NOBODY, paths)
        assert all(isinstance(v, int) and v > 0 for v in owner.values()), \
            owner
        # root, too
        assert read_status(m)["vault"] == az.info["vault_url"]
    finally:
        m.unmount()


def test_debug_log_and_files_hold_no_token(mount, az):
    m = mount(loglevel="debug")
    text = read(m.p(".kvfs", "status"), "r") + \
        read(m.p(".kvfs", "metrics"), "r")
    for tok in az.credentials()["tokens"]:
        assert tok not in text
    secret = read(az.info["apps"]["secret"]["secret_file"], "r").strip()
    assert secret not in text


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
