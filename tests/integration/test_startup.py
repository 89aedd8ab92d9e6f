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


def test_unknown_collection_is_refused(fake, tmp_path):
    """A typo in collections= is a usage error naming the known ones,
    before any credential is read."""
    for value, word in (("certificates+secret", "'secret'"),
                        ("Certificates", "'Certificates'"),
                        ("certificates++certificates", "empty")):
        r = run_kvfs(["-f", "-o", "collections=" + value,
                      fake.info["vault_url"], str(tmp_path)])
        assert r.returncode == 2, (value, r.stderr)
        line = one_line(r.stderr)
        assert line.startswith("kvfs: collections=: "), line
        assert word in line, line
        if word != "empty":
            assert "(known: certificates" in line, line
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


# --- the line itself ------------------------------------------------------


def refused(fake, tmp_path, **overrides):
    """Run kvfs with the secret app's options changed; its stderr."""
    opts = secret_options(fake)
    opts.update(overrides)
    mnt = tmp_path / "mnt"
    mnt.mkdir(exist_ok=True)
    r = run_kvfs(["-f", "-o", option_string(opts), fake.info["vault_url"],
                  str(mnt)])
    assert r.returncode == 1, r.stderr
    assert_not_mounted(mnt)
    return r.stderr


def test_azure_description_is_whole_without_trace_ids(az, tmp_path):
    info = az.info
    app = "00000000-0000-0000-0000-000000000000"
    err = refused(az, tmp_path, client_id=app)
    assert err == (
        "kvfs: cannot get a token for '%s' with provider 'secret' from "
        "%s/%s/oauth2/v2.0/token: 400 Bad Request (unauthorized_client, "
        "AADSTS700016): Application with identifier '%s' was not found in "
        "the directory '%s'. This can happen if the application has not "
        "been installed by the administrator of the tenant or consented to "
        "by any user in the tenant. You may have sent your authentication "
        "request to the wrong tenant.\n"
        % (info["vault_url"], info["authority"], info["tenant"], app,
           info["tenant"]))


def test_secret_given_as_secret_file_is_not_echoed(az, tmp_path):
    secret = az.info["apps"]["secret"]["secret"]
    # relative: made absolute against the working directory
    err = refused(az, tmp_path, secret_file=secret)
    assert secret not in err and secret[3:] not in err
    assert err == (
        "kvfs: cannot get a token for '%s' with provider 'secret': cannot "
        "open '%s/%s\u2026' (%d characters not shown): No such file or "
        "directory\n" % (az.info["vault_url"], os.getcwd(), secret[:3],
                         len(secret) - 3))


def test_missing_secret_file_shows_its_directory(az, tmp_path):
    err = refused(az, tmp_path, secret_file=str(tmp_path / "no-such.secret"))
    assert err == (
        "kvfs: cannot get a token for '%s' with provider 'secret': cannot "
        "open '%s/no-\u2026' (11 characters not shown): No such file or "
        "directory\n" % (az.info["vault_url"], tmp_path))


def test_empty_secret_file_names_the_file_not_the_vault(az, tmp_path):
    empty = tmp_path / "empty.secret"
    empty.write_text("")
    empty.chmod(0o600)
    err = refused(az, tmp_path, secret_file=str(empty))
    assert err == ("kvfs: cannot get a token for '%s' with provider "
                   "'secret': '%s' is empty\n" % (az.info["vault_url"], empty))
    assert az.log() == []


def test_untrusted_certificate_points_at_ca_file(az, tmp_path):
    info = az.info
    err = refused(az, tmp_path, ca_file=None)
    assert err.startswith(
        "kvfs: cannot get a token for '%s' with provider 'secret' from "
        "%s/%s/v2.0/.well-known/openid-configuration: SSL certificate "
        "problem: " % (info["vault_url"], info["authority"], info["tenant"]))
    assert err.endswith(" (not a public Azure endpoint: give the CA that "
                        "signed its certificate with ca_file=)\n"), err
    # the wrong CA given: the line asks whether it is the right one
    err = refused(az, tmp_path, ca_file=info["root_ca"])
    assert err.endswith(" (is the CA that signed it in ca_file='%s'?)\n"
                        % info["root_ca"]), err
