"""rules_file= and key_readers=: per-object owners and modes as stat shows
them, who may open the key-bearing files (user:, uid:, group: through a
supplementary group, exe: of a root-owned binary at the named path), root
refused unless listed, SIGHUP re-reading the rules (a broken file keeps the
old ones), a bad rules file refusing the mount with its line; and the
audit of every key open: its log line (rate-limited per process and
object), its counters and .kvfs/audit, which only the mount's owner reads.
Real mounts with allow_other, as users the tests create."""

import errno
import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from conftest import option_string, run_kvfs, secret_options, start_mount
from test_control import parse_metrics, value
from test_revalidation import hup, wait_listings

ALICE = "kvfs-rules-alice"
BOB = "kvfs-rules-bob"
GROUP = "kvfs-rules-keys"

# As another user: each path opened and read whole, its length or the
# errno's name; argv[1] is the number of times to open the first path
# before (one process, for the rate limit).
OPEN_AS = r"""
import errno, json, sys
out = {}
for _ in range(int(sys.argv[1])):
    with open(sys.argv[2], "rb") as f:
        f.read()
for p in sys.argv[2:]:
    try:
        with open(p, "rb") as f:
            out[p] = len(f.read())
    except OSError as e:
        out[p] = errno.errorcode[e.errno]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def users():
    """{name: (uid, gid)} of two users made for these tests; BOB is in
    GROUP as a supplementary group, ALICE is not."""
    made = []
    subprocess.run(["groupadd", "--system", GROUP], check=True)
    try:
        for name in (ALICE, BOB):
            subprocess.run(["useradd", "--system", "--no-create-home",
                            "--user-group", "--shell", "/usr/sbin/nologin",
                            name], check=True)
            made.append(name)
        subprocess.run(["usermod", "-a", "-G", GROUP, BOB], check=True)
        yield {n: (pwd.getpwnam(n).pw_uid, pwd.getpwnam(n).pw_gid)
               for n in made}
    finally:
        for name in made:
            subprocess.run(["userdel", name], check=False)
        subprocess.run(["groupdel", GROUP], check=False)


def run_as(users, name, paths, times=0, exe=None):
    """OPEN_AS as user name (with their supplementary groups): {path:
    length or errno name}."""
    uid, gid = users[name]
    groups = [g.gr_gid for g in grp.getgrall() if name in g.gr_mem]
    r = subprocess.run(["/usr/bin/python3", "-c", OPEN_AS, str(times)] +
                       paths, user=uid, group=gid, extra_groups=groups,
                       cwd="/", env={"PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def cat_as(users, name, cat, path):
    """cat (a copy of /usr/bin/cat) of path as user name: (status,
    stdout bytes)."""
    uid, gid = users[name]
    r = subprocess.run([cat, path], user=uid, group=gid, extra_groups=[],
                       cwd="/", env={"PATH": "/usr/bin:/bin"},
                       capture_output=True, timeout=60)
    return r.returncode, r.stdout


@pytest.fixture
def place():
    """A directory other users can reach (pytest's are root's 0700):
    the mount point mnt/ and the rules file go there."""
    d = tempfile.mkdtemp(prefix="kvfs-test-rules-")
    os.chmod(d, 0o755)
    os.mkdir(os.path.join(d, "mnt"), 0o755)
    yield d
    subprocess.run(["umount", "-l", os.path.join(d, "mnt")],
                   capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


def write_rules(place, text, mode=0o644):
    path = os.path.join(place, "rules")
    with open(path + ".new", "w") as f:
        f.write(text)
    os.chmod(path + ".new", mode)
    os.rename(path + ".new", path)
    return path


@pytest.fixture
def rules_mount(az, place):
    """rules_mount(text, **options) -> util.Mount with allow_other and the
    rules text, unmounted at the end."""
    mounts = []

    def _mount(text=None, **kw):
        if text is not None:
            kw["rules_file"] = write_rules(place, text)
        m = start_mount(az, os.path.join(place, "mnt"),
                        os.path.join(place, "kvfs.stderr"),
                        allow_other=True, **kw)
        mounts.append(m)
        return m.wait_mounted()

    yield _mount
    for m in mounts:
        m.unmount()


def key_lines(m, result):
    return [line for line in m.stderr().splitlines()
            if "key read %s:" % result in line]


def metrics(m):
    with open(m.p(".kvfs", "metrics")) as f:
        return parse_metrics(f.read())[0]


def opens(m, result):
    return value(metrics(m), "kvfs_key_opens_total", result=result)


def audit(m):
    with open(m.p(".kvfs", "audit")) as f:
        return [json.loads(line) for line in f.read().splitlines()]


def test_owners_and_modes_per_pattern(users, rules_mount):
    alice_uid, _ = users[ALICE]
    keys = grp.getgrnam(GROUP).gr_gid
    m = rules_mount(
        "# the web server's certificate\n"
        "certificates/WWW uid=%s gid=%s mode=0440 key_mode=0400\n"
        "\n"
        "certificates/a* uid=33 key_mode=0440   # api\n"
        "* mode=0404\n" % (ALICE, GROUP))
    www = m.p("certificates", "www")
    for path, want in [
            (www, (alice_uid, keys, 0o555)),
            (os.path.join(www, "cert.pem"), (alice_uid, keys, 0o440)),
            (os.path.join(www, "privkey.pem"), (alice_uid, keys, 0o400)),
            (os.path.join(www, "cert.pfx"), (alice_uid, keys, 0o400)),
            (m.p("certificates", "api", "fullchain.pem"), (33, 0, 0o444)),
            (m.p("certificates", "api", "privkey.pem"), (33, 0, 0o440)),
            # the last line: mode= only; key_mode= is the mount's
            (m.p("certificates", "mail", "cert.pem"), (0, 0, 0o404)),
            (m.p("certificates", "mail", "privkey.pem"), (0, 0, 0o400))]:
        st = os.stat(path)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == want, path
    # the mode bits, as the kernel checks them: alice owns www's files
    got = run_as(users, ALICE, [os.path.join(www, "privkey.pem"),
                                m.p("certificates", "mail", "privkey.pem")])
    assert got[os.path.join(www, "privkey.pem")] > 0, got
    assert got[m.p("certificates", "mail", "privkey.pem")] == "EACCES", got
    # and bob, through the group, the public files only
    got = run_as(users, BOB, [os.path.join(www, "cert.pem"),
                              os.path.join(www, "privkey.pem")])
    assert got[os.path.join(www, "cert.pem")] > 0, got
    assert got[os.path.join(www, "privkey.pem")] == "EACCES", got


def test_secrets_listed_and_stat_ed_with_their_rule(users, rules_mount):
    """secrets/ lists files: what ls -l and a stat show after the listing,
    and who may open them, are the rule's.  (On this kernel a lookup
    follows READDIRPLUS, so a listing that gave the mount's owner would
    be corrected by it: this checks the result, not the listing's own
    attributes.)"""
    alice_uid, _ = users[ALICE]
    m = rules_mount("secrets/db-password uid=%s key_mode=0400\n" % ALICE,
                    collections="secrets")
    path = m.p("secrets", "db-password")
    # ls -l: the kernel asks with READDIRPLUS once a listing is stat'ed
    for _ in range(2):
        out = subprocess.run(["ls", "-ln", m.p("secrets")], check=True,
                             capture_output=True, text=True).stdout
    assert re.search(r"^-r-------- 1 %d .* db-password$" % alice_uid, out,
                     re.M), out
    st = os.stat(path)
    assert (st.st_uid, st.st_mode & 0o7777) == (alice_uid, 0o400)
    got = run_as(users, BOB, [path])
    assert got[path] == "EACCES", got
    got = run_as(users, ALICE, [path])
    assert isinstance(got[path], int) and got[path] > 0, got


def test_a_user_outside_readers_gets_eacces_on_the_key_only(users,
                                                           rules_mount):
    m = rules_mount("certificates/www key_mode=0444 readers=user:%s\n"
                    % ALICE)
    key = m.p("certificates", "www", "privkey.pem")
    cert = m.p("certificates", "www", "cert.pem")
    bundle = m.p("certificates", "www", "bundle.pem")
    got = run_as(users, BOB, [key, cert, bundle])
    assert got[key] == "EACCES" and got[bundle] == "EACCES", got
    assert got[cert] > 0, got
    got = run_as(users, ALICE, [key, cert, bundle])
    assert all(isinstance(v, int) and v > 0 for v in got.values()), got


def test_group_reader_through_a_supplementary_group(users, rules_mount):
    m = rules_mount("certificates/www key_mode=0444 readers=group:%s\n"
                    % GROUP)
    key = m.p("certificates", "www", "privkey.pem")
    # bob's primary group is his own: GROUP is supplementary
    assert users[BOB][1] != grp.getgrnam(GROUP).gr_gid
    assert run_as(users, BOB, [key])[key] > 0
    assert run_as(users, ALICE, [key])[key] == "EACCES"


def test_key_readers_option_covers_every_object(users, rules_mount):
    m = rules_mount(key_readers="uid:%d" % users[ALICE][0], key_mode="0444")
    paths = [m.p("certificates", n, "privkey.pem") for n in ("www", "api")]
    assert all(v > 0 for v in run_as(users, ALICE, paths).values())
    assert all(v == "EACCES" for v in run_as(users, BOB, paths).values())


@pytest.fixture
def cats():
    """Copies of /usr/bin/cat: (allowed, elsewhere), both root's 0755 in
    root's 0755 directories."""
    d = tempfile.mkdtemp(prefix="kvfs-test-rules-exe-")
    os.chmod(d, 0o755)
    out = []
    for sub in ("bin", "other"):
        os.mkdir(os.path.join(d, sub), 0o755)
        p = os.path.join(d, sub, "cat")
        shutil.copy("/usr/bin/cat", p)
        os.chmod(p, 0o755)
        out.append(p)
    yield out
    shutil.rmtree(d)


def test_exe_reader_is_the_binary_at_that_path_and_root_owned(
        users, rules_mount, cats):
    allowed, elsewhere = cats
    m = rules_mount("certificates/www key_mode=0444 readers=exe:%s\n"
                    % allowed)
    key = m.p("certificates", "www", "privkey.pem")
    status, out = cat_as(users, ALICE, allowed, key)
    assert status == 0 and out.startswith(b"-----BEGIN PRIVATE KEY-----")
    status, out = cat_as(users, ALICE, elsewhere, key)
    assert status != 0 and out == b""
    # the named path, but writable by its group: not trusted
    os.chmod(allowed, 0o775)
    status, out = cat_as(users, ALICE, allowed, key)
    assert status != 0 and out == b""
    assert len(key_lines(m, "denied")) == 2
    # alice's python is not the binary either
    assert run_as(users, ALICE, [key])[key] == "EACCES"


def test_root_is_refused_unless_listed(users, rules_mount):
    m = rules_mount("certificates/www readers=user:%s\n"
                    "certificates/api readers=user:%s,uid:0\n"
                    % (ALICE, ALICE))
    with pytest.raises(PermissionError):
        open(m.p("certificates", "www", "privkey.pem"), "rb")
    with pytest.raises(PermissionError):
        open(m.p("certificates", "www", "cert.pfx"), "rb")
    with open(m.p("certificates", "www", "cert.pem"), "rb") as f:
        assert f.read().startswith(b"-----BEGIN CERTIFICATE-----")
    with open(m.p("certificates", "api", "privkey.pem"), "rb") as f:
        assert f.read().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_sighup_rereads_the_rules_and_a_broken_file_keeps_them(
        az, users, place, rules_mount):
    m = rules_mount("certificates/www key_mode=0444 readers=user:%s\n"
                    % ALICE)
    key = m.p("certificates", "www", "privkey.pem")
    assert run_as(users, ALICE, [key])[key] > 0
    assert run_as(users, BOB, [key])[key] == "EACCES"
    assert os.stat(key).st_mode & 0o7777 == 0o444  # the kernel keeps it

    write_rules(place, "certificates/www key_mode=0404 readers=user:%s\n"
                % BOB)
    hup(m)
    # the rules are read before the revalidation that SIGHUP asks for
    wait_listings(az, 2)
    assert run_as(users, BOB, [key])[key] > 0
    assert run_as(users, ALICE, [key])[key] == "EACCES"
    # the kernel was told to drop the modes of the old rules
    assert os.stat(key).st_mode & 0o7777 == 0o404

    path = write_rules(place, "certificates/www readers=user:%s\n"
                       "certificates/api readers=nobody-knows:x\n" % ALICE)
    hup(m)
    wait_listings(az, 3)
    assert run_as(users, BOB, [key])[key] > 0
    assert run_as(users, ALICE, [key])[key] == "EACCES"
    assert "%s:2: unknown reader 'nobody-knows:'" % path in m.stderr()


@pytest.mark.parametrize("text,mode,want", [
    ("* mode=0444\n", 0o646, "too open"),
    ("* mode=0444\n", 0o664, "too open"),
    ("# ok\n* mode=0444\ncertificates/www mode=999\n", 0o644,
     ":3: invalid mode '999'"),
    ("certificates/www uid=no-such-user-here\n", 0o644,
     ":1: no user 'no-such-user-here'"),
    ("certificates/www colour=blue\n", 0o644, ":1: unknown key 'colour'"),
])
def test_a_bad_rules_file_refuses_the_mount(az, place, text, mode, want):
    path = write_rules(place, text, mode)
    opts = secret_options(az)
    opts.update(allow_other=True, rules_file=path)
    r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"],
                  os.path.join(place, "mnt")])
    assert r.returncode == 2, r.stderr
    assert path in r.stderr and want in r.stderr, r.stderr
    assert not os.path.ismount(os.path.join(place, "mnt"))


def test_audit_lines_counters_and_file(az, users, rules_mount):
    m = rules_mount("certificates/www key_mode=0444 readers=user:%s,uid:0\n"
                    % ALICE, loglevel="debug")
    key = m.p("certificates", "www", "privkey.pem")
    alice_uid, alice_gid = users[ALICE]
    assert opens(m, "allowed") == 0 and opens(m, "denied") == 0

    assert run_as(users, ALICE, [key])[key] > 0
    assert run_as(users, BOB, [key])[key] == "EACCES"
    allowed, denied = key_lines(m, "allowed"), key_lines(m, "denied")
    assert len(allowed) == 1 and len(denied) == 1, m.stderr()
    assert "key read allowed: certificates/www/privkey.pem version=" \
        in allowed[0]
    assert " uid=%d gid=%d exe=/usr/bin/python3" % (alice_uid, alice_gid) \
        in allowed[0]
    assert "version=-" not in allowed[0]
    assert " uid=%d " % users[BOB][0] in denied[0]
    assert opens(m, "allowed") == 1 and opens(m, "denied") == 1
    records = audit(m)
    assert [(r["result"], r["uid"], r["path"]) for r in records] == [
        ("allowed", alice_uid, "certificates/www/privkey.pem"),
        ("denied", users[BOB][0], "certificates/www/privkey.pem")]
    assert records[0]["exe"].startswith("/usr/bin/python3")
    assert records[0]["version"]

    # one process, 1,000 opens: one line, every open counted and kept
    assert run_as(users, ALICE, [key], times=1000)[key] > 0
    assert len(key_lines(m, "allowed")) == 2, m.stderr()
    assert opens(m, "allowed") == 1002
    records = audit(m)
    assert len(records) == 1000
    assert all(r["result"] == "allowed" and r["uid"] == alice_uid
               for r in records)

    # .kvfs/audit is the mount's owner's (root's) alone
    got = run_as(users, ALICE, [m.p(".kvfs", "audit")])
    assert got[m.p(".kvfs", "audit")] == "EACCES", got
    st = os.stat(m.p(".kvfs", "audit"))
    assert st.st_mode & 0o777 == 0o400 and st.st_uid == 0

    # nothing of the key is in any log line or in the audit
    with open(key, "rb") as f:
        pem = f.read().decode()
    body = [line for line in pem.splitlines() if "-----" not in line]
    assert len(body) > 5
    with open(m.p(".kvfs", "audit")) as f:
        text = m.stderr() + f.read()
    for line in body:
        assert line not in text
        assert line[:16] not in text


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-v"]))
