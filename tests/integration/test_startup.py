"""Start-up contract: authenticate and list before mounting; on failure one
precise line, a non-zero exit and nothing mounted."""

import os
import re
import time

import util
from conftest import clean_env, option_string, run_kvfs, secret_options


def assert_not_mounted(path):
    assert not util.is_mounted(str(path)), "%s is mounted" % path


def mounts_at(path):
    """(fstype, source) of every mount stacked on path."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            if left.split()[4] == path:
                found.append(tuple(right.split()[:2]))
    return found


def one_line(text):
    lines = [l for l in text.splitlines() if l.strip()]
    assert len(lines) == 1, "expected one line, got:\n" + text
    return lines[0]


def test_help_lists_options():
    r = run_kvfs(["--help"])
    assert r.returncode == 0
    out = r.stdout + r.stderr
    for opt in ("auth=", "tenant=", "client_id=", "secret_file=", "ca_file=",
                "api_version=", "allow_expired", "uid=", "gid="):
        assert opt in out, opt


def test_version():
    r = run_kvfs(["--version"])
    assert r.returncode == 0
    assert "kvfs" in (r.stdout + r.stderr)


def test_secret_on_command_line_is_refused(fake, tmp_path):
    opts = secret_options(fake)
    del opts["secret_file"]
    opts["secret"] = fake.info["apps"]["secret"]["secret"]
    r = run_kvfs(["-f", "-o", option_string(opts), fake.info["vault_url"],
                  str(tmp_path)])
    assert r.returncode != 0
    assert "secret_file=" in r.stderr
    assert fake.info["apps"]["secret"]["secret"] not in r.stderr
    assert_not_mounted(tmp_path)


def test_wrong_secret(az, tmp_path):
    bad = tmp_path / "bad-secret"
    bad.write_text("not-the-secret\n")
    bad.chmod(0o600)
    opts = secret_options(az)
    opts["secret_file"] = str(bad)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"],
                  str(mnt)])
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "AADSTS7000215" in line
    assert "secret" in line and "401" in line
    assert "/oauth2/v2.0/token" in line
    assert "not-the-secret" not in r.stderr
    assert_not_mounted(mnt)
    # no token, so the vault was never asked for anything with a bearer
    assert [e for e in az.log() if e["server"] == "vault" and e["auth"]] == []


def test_unknown_vault_host(fake, tmp_path):
    opts = secret_options(fake)
    # a port on loopback where nothing listens
    r = run_kvfs(["-f", "-o", option_string(opts), "https://127.0.0.1:9",
                  str(tmp_path)])
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    # one line per retry, each saying when the next comes and when kvfs
    # gives up, then the one line of the refusal
    retry = re.compile(r"kvfs: cannot reach 'https://127\.0\.0\.1:9': "
                       r"Failed to connect to 127\.0\.0\.1 port 9 .*"
                       r"\(attempt (\d+), next in \d+\.\d s, "
                       r"giving up in \d+ s\)$")
    matches = [retry.match(l) for l in lines[:-1]]
    assert lines[:-1] and all(matches), r.stderr
    assert [int(m.group(1)) for m in matches] == list(range(1, len(lines)))
    assert lines[-1].startswith(
        "kvfs: cannot reach 'https://127.0.0.1:9/certificates': "), r.stderr
    assert_not_mounted(tmp_path)


def test_mountpoint_that_is_not_a_directory(az, tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    r = run_kvfs(["-f", "-o", option_string(secret_options(az)),
                  az.info["vault_url"], str(f)])
    assert r.returncode == 1
    assert r.stderr == "kvfs: mountpoint '%s' is not a directory\n" % f
    assert_not_mounted(f)
    assert az.log() == []  # refused before authenticating


def test_mountpoint_that_carries_a_kvfs_mount(mount, az):
    m = mount()
    path = os.path.realpath(m.path)
    az.reset_log()
    r = run_kvfs(["-f", "-o", option_string(secret_options(az)),
                  az.info["vault_url"], m.path])
    assert r.returncode == 1
    assert r.stderr == ("kvfs: '%s' already carries a kvfs mount of '%s'; "
                        "unmount it first\n" % (path, az.info["vault_url"]))
    assert az.log() == []  # refused before authenticating
    assert mounts_at(path) == [("fuse.kvfs", az.info["vault_url"])]
    assert "www" in os.listdir(m.p("certificates"))


def test_unknown_vault_name_does_not_hang(fake, tmp_path):
    opts = secret_options(fake)
    t0 = time.monotonic()
    r = run_kvfs(["-f", "-o", option_string(opts) + ",deadline=5",
                  "no-such-vault-kvfs", str(tmp_path)], timeout=90)
    assert r.returncode == 1
    # the retries say so, one line each; the last line says why it failed
    lines = r.stderr.splitlines()
    assert all("(attempt %d, next in " % (i + 1) in l
               for i, l in enumerate(lines[:-1])), r.stderr
    assert lines[-1].startswith(
        "kvfs: cannot reach 'https://no-such-vault-kvfs.vault.azure.net"
        "/certificates': "), r.stderr
    assert time.monotonic() - t0 < 60
    assert_not_mounted(tmp_path)


def test_forbidden_listing_names_the_code(az, tmp_path):
    r = run_kvfs(["-f", "-o", option_string(secret_options(az, "nolist")),
                  az.info["vault_url"], str(tmp_path)])
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "403" in line and "ForbiddenByRbac" in line
    assert_not_mounted(tmp_path)


def test_unprotected_secret_file_is_refused(fake, tmp_path):
    loose = tmp_path / "secret"
    loose.write_text(fake.info["apps"]["secret"]["secret"])
    loose.chmod(0o644)
    opts = secret_options(fake)
    opts["secret_file"] = str(loose)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = run_kvfs(["-f", "-o", option_string(opts), fake.info["vault_url"],
                  str(mnt)])
    assert r.returncode != 0
    assert "UNPROTECTED" in r.stderr and "0644" in r.stderr
    assert fake.info["apps"]["secret"]["secret"] not in r.stderr
    assert_not_mounted(mnt)


def test_unknown_option_is_refused(fake, tmp_path):
    r = run_kvfs(["-f", "-o", "frobnicate=1", fake.info["vault_url"],
                  str(tmp_path)])
    assert r.returncode == 2
    assert "frobnicate" in r.stderr
    assert_not_mounted(tmp_path)


def test_secret_from_environment(mount, fake):
    m = mount(secret_file=None,
              env={"AZURE_CLIENT_SECRET": fake.info["apps"]["secret"]["secret"]})
    assert "www" in os.listdir(m.p("certificates"))


def test_environment_defaults_and_option_wins(mount, fake):
    info = fake.info
    # tenant and client id from the environment; a wrong client id in the
    # environment is overridden by the option.
    m = mount(tenant=None, env={"AZURE_TENANT_ID": info["tenant"],
                                "AZURE_CLIENT_ID": "00000000-0000-0000-0000-00000000dead"})
    assert "www" in os.listdir(m.p("certificates"))


def test_fstab_options_are_accepted_and_mount_is_read_only(mount, fake):
    m = mount(_netdev=True, nofail=True, rw=True, dev=True, suid=True)
    fstype, source, opts = util.mount_info(m.path)
    assert fstype == "fuse.kvfs"
    # the fstab line's first field, so that mount -a knows it is mounted
    assert source == fake.info["vault_url"]
    assert "ro" in opts.split(",")


def test_daemonizes_without_f(fake, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    # mounted by the time the command returned, gone after the unmount
    with util.daemonized(option_string(secret_options(fake)),
                         fake.info["vault_url"], mnt, clean_env()):
        assert "www" in os.listdir(mnt / "certificates")
