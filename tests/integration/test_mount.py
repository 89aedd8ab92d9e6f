"""kvfs through the system's mount(8): mount -t fuse.kvfs, mount -a against
a temporary fstab (mount -T, never /etc/fstab), noauto, the fstab-only and
generic options, and the ways a mount ends (umount, fusermount3 -u,
SIGTERM), each with the daemon exiting 0 and nothing left behind.

mount(8) finds kvfs only in a system directory: for the duration of this
module /usr/local/sbin/kvfs is a symlink to the build's kvfs (see
sysmount.build_kvfs_in_path)."""

import json
import os
import re
import signal
import subprocess

import pytest

import sysmount
import util
from conftest import option_string, secret_options


@pytest.fixture(scope="module")
def system_kvfs():
    binary = util.kvfs_binary()
    with sysmount.build_kvfs_in_path(binary), sysmount.subreaper():
        yield os.path.realpath(binary)


@pytest.fixture
def env(tmp_path):
    logdir = tmp_path / "sanitizers"
    logdir.mkdir()
    yield sysmount.sanitizer_env(str(logdir))
    sysmount.check_sanitizer_logs(str(logdir))


@pytest.fixture
def mounts():
    started = []
    yield started
    for m in started:
        m.cleanup()


def mnt_dir(tmp_path, name="mnt"):
    d = tmp_path / name
    d.mkdir()
    return str(d)


def assert_ended(m, code_wanted=0):
    code = m.wait_exit()
    assert code == code_wanted, "kvfs exited with %d" % code
    assert not util.is_mounted(m.path)
    assert sysmount.kvfs_pids(m.path) == []


def assert_serves(m, az):
    with open(m.p("certificates", "www", "cert.pem")) as f:
        assert f.read().startswith("-----BEGIN CERTIFICATE-----")
    assert "www" in os.listdir(m.p("certificates"))


def test_mount_t_fuse_kvfs_then_umount(system_kvfs, az, env, mounts, tmp_path):
    path = mnt_dir(tmp_path)
    opts = secret_options(az)
    opts.update({"allow_other": True, "uid": "33", "gid": "33"})
    # what an fstab line or systemd would add; libmount and kvfs drop them
    extra = "_netdev,nofail,x-systemd.automount,x-systemd.idle-timeout=60"
    m = sysmount.mount(["-t", "fuse.kvfs", az.info["vault_url"], path,
                        "-o", option_string(opts) + "," + extra], path, env)
    mounts.append(m)

    assert os.path.realpath("/proc/%d/exe" % m.pid) == system_kvfs, \
        "mount ran another kvfs than the build's"
    fstype, source, mopts = util.mount_info(path)
    assert fstype == "fuse.kvfs"
    assert source == az.info["vault_url"]
    mopts = mopts.split(",")
    for o in ("ro", "allow_other", "default_permissions"):
        assert o in mopts, mopts
    assert "rw" not in mopts
    assert_serves(m, az)
    st = os.stat(m.p("certificates", "www", "cert.pem"))
    assert (st.st_uid, st.st_gid) == (33, 33)

    r = subprocess.run(["umount", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert_ended(m)


def test_fusermount3_u_ends_the_daemon(system_kvfs, az, env, mounts, tmp_path):
    path = mnt_dir(tmp_path)
    m = sysmount.mount(["-t", "fuse.kvfs", az.info["vault_url"], path, "-o",
                        option_string(secret_options(az))], path, env)
    mounts.append(m)
    assert_serves(m, az)
    r = subprocess.run(["fusermount3", "-u", path], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    assert_ended(m)


def test_sigterm_unmounts_and_exits_0(system_kvfs, az, env, mounts, tmp_path):
    path = mnt_dir(tmp_path)
    m = sysmount.mount(["-t", "fuse.kvfs", az.info["vault_url"], path, "-o",
                        option_string(secret_options(az))], path, env)
    mounts.append(m)
    os.kill(m.pid, signal.SIGTERM)
    assert_ended(m)


def test_second_mount_on_a_kvfs_mount_is_refused(system_kvfs, az, env,
                                                  mounts, tmp_path):
    path = mnt_dir(tmp_path)
    args = ["-t", "fuse.kvfs", az.info["vault_url"], path, "-o",
            option_string(secret_options(az))]
    m = sysmount.mount(args, path, env)
    mounts.append(m)
    az.reset_log()
    # not mount -a, which skips a mounted line: mount(8) runs kvfs again
    r = subprocess.run(["mount"] + args, env=env, capture_output=True,
                       text=True, timeout=60)
    assert r.returncode != 0
    assert ("kvfs: '%s' already carries a kvfs mount of '%s'; unmount it "
            "first\n" % (path, az.info["vault_url"])) in r.stderr, r.stderr
    assert sysmount.kvfs_pids(path) == [m.pid]
    assert az.log() == []
    assert_serves(m, az)


def fstab_line(az, path, extra):
    return "%s %s fuse.kvfs %s 0 0\n" % (
        az.info["vault_url"], path,
        option_string(secret_options(az)) + "," + extra)


def test_mount_a_with_a_temporary_fstab(system_kvfs, az, env, mounts,
                                        tmp_path):
    auto = mnt_dir(tmp_path, "auto")
    manual = mnt_dir(tmp_path, "manual")
    fstab = tmp_path / "fstab"
    fstab.write_text(
        "# a temporary fstab: mount -T, never /etc/fstab\n"
        + fstab_line(az, auto, "_netdev,nofail,x-systemd.requires="
                     "network-online.target,comment=kvfs,allow_other")
        + fstab_line(az, manual, "noauto,_netdev,x-systemd.automount"))

    r = subprocess.run(["mount", "-a", "-T", str(fstab)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert util.is_mounted(auto)
    assert not util.is_mounted(manual), "mount -a mounted a noauto line"
    pids = sysmount.kvfs_pids(auto)
    assert len(pids) == 1
    first = sysmount.SystemMount(auto, pids[0])
    mounts.append(first)
    assert_serves(first, az)
    assert sysmount.kvfs_pids(manual) == []

    # noauto only keeps it out of mount -a; by its mount point it mounts
    second = sysmount.mount(["-T", str(fstab), manual], manual, env)
    mounts.append(second)
    assert_serves(second, az)

    # a second mount -a leaves the mounted line alone
    r = subprocess.run(["mount", "-a", "-T", str(fstab)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(sysmount.kvfs_pids(auto)) == 1

    for m in (first, second):
        subprocess.run(["umount", m.path], check=True)
        assert_ended(m)


def test_refused_mount_fails_mount_and_leaves_nothing(system_kvfs, az, env,
                                                     tmp_path):
    path = mnt_dir(tmp_path)
    bad = tmp_path / "bad-secret"
    bad.write_text("not-the-secret\n")
    bad.chmod(0o600)
    opts = secret_options(az)
    opts["secret_file"] = str(bad)
    r = subprocess.run(["mount", "-t", "fuse.kvfs", az.info["vault_url"],
                        path, "-o", option_string(opts)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "kvfs: cannot get a token" in r.stderr, r.stderr
    assert not util.is_mounted(path)
    assert sysmount.kvfs_pids(path) == []


def test_secret_on_the_mount_command_line_is_refused(system_kvfs, az, env,
                                                    tmp_path):
    path = mnt_dir(tmp_path)
    opts = secret_options(az)
    del opts["secret_file"]
    opts["client_secret"] = "s3cr3t"
    r = subprocess.run(["mount", "-t", "fuse.kvfs", az.info["vault_url"],
                        path, "-o", option_string(opts)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "secret_file=" in r.stderr, r.stderr
    assert not util.is_mounted(path)


def test_credential_from_credentials_directory(system_kvfs, az, env, mounts,
                                               tmp_path):
    """kvfs@.service with LoadCredential=kvfs-client-secret:...: systemd
    sets $CREDENTIALS_DIRECTORY, mount(8) and mount.fuse3 pass it on."""
    path = mnt_dir(tmp_path)
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o500)
    secret = creds / "kvfs-client-secret"
    with open(az.info["apps"]["secret"]["secret_file"]) as f:
        secret.write_text(f.read())
    secret.chmod(0o400)
    opts = secret_options(az)
    del opts["secret_file"]
    env["CREDENTIALS_DIRECTORY"] = str(creds)
    m = sysmount.mount(["-t", "fuse.kvfs", az.info["vault_url"], path, "-o",
                        option_string(opts)], path, env)
    mounts.append(m)
    assert_serves(m, az)
    subprocess.run(["umount", path], check=True)
    assert_ended(m)

    # and without the credential, the same options have no secret at all
    del env["CREDENTIALS_DIRECTORY"]
    r = subprocess.run(["mount", "-t", "fuse.kvfs", az.info["vault_url"],
                        path, "-o", option_string(opts)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert not util.is_mounted(path)


def test_daemon_logs_to_syslog_not_stderr(system_kvfs, az, env, tmp_path):
    """Once in the background kvfs logs to syslog: run in a private mount
    namespace whose /dev/log is a socket the test listens on
    (syslog_ns.py)."""
    path = mnt_dir(tmp_path)
    work = tmp_path / "ns"
    work.mkdir()
    opts = secret_options(az)
    opts["loglevel"] = "info"
    script = os.path.join(os.path.dirname(__file__), "syslog_ns.py")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private",
                        "/usr/bin/python3", script, str(work), path,
                        az.info["vault_url"], option_string(opts)],
                       env=env, capture_output=True, text=True, timeout=90)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["mount_rc"] == 0, out["mount_out"]
    assert out["mount_out"] == "", "kvfs wrote to stderr in the background"
    assert out["read_ok"]
    lines = out["syslog"]
    mounted = [l for l in lines if "mounted '%s'" % az.info["vault_url"] in l]
    assert len(mounted) == 1, lines
    # <facility daemon (3) * 8 + info (6)>, then "... kvfs[PID]: "
    assert mounted[0].startswith("<30>"), mounted[0]
    assert re.search(r" kvfs\[\d+\]: mounted ", mounted[0]), mounted[0]
    assert any("unmounting" in l for l in lines), lines
    assert not util.is_mounted(path)
