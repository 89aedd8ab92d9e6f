"""The conventions kvfs shares with other FUSE filesystems: auto_unmount
(the mount goes when the daemon dies, even by SIGKILL: in the foreground and
through mount -t fuse.kvfs), -s accepted, the mode options of other
filesystems (umask=, file_mode=, dir_mode=) refused with a pointer to
kvfs's own, and -V naming the libraries kvfs runs with."""

import os
import re
import signal
import subprocess

import pytest

import sysmount
import util
from conftest import (clean_env, option_string, run_kvfs, secret_options,
                      start_mount)


def read_cert(path):
    with open(os.path.join(path, "certificates", "www", "cert.pem")) as f:
        assert f.read().startswith("-----BEGIN CERTIFICATE-----")


def killed(m):
    """SIGKILL the daemon of util.Mount m and reap it."""
    m.proc.send_signal(signal.SIGKILL)
    m.proc.wait(timeout=30)
    m.proc = None


def test_auto_unmount_after_sigkill(fake, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    m = start_mount(fake, mnt, str(tmp_path / "kvfs.stderr"),
                    auto_unmount=True).wait_mounted()
    try:
        read_cert(m.path)
        killed(m)
        # fusermount3's watcher unmounts once the daemon's end of its
        # socket closes: a deadline to fail by, not a speed to assert.
        util.wait_until(lambda: not util.is_mounted(m.path), 30,
                        "the mount goes once kvfs is killed")
    finally:
        if m.proc:
            m.proc.kill()
            m.proc.wait()
        util.umount(m.path)


def test_without_auto_unmount_sigkill_leaves_the_mount(fake, tmp_path):
    """What auto_unmount is for: without it the dead mount stays."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    m = start_mount(fake, mnt, str(tmp_path / "kvfs.stderr")).wait_mounted()
    try:
        read_cert(m.path)
        killed(m)
        assert util.is_mounted(m.path)
        with pytest.raises(OSError) as e:
            os.listdir(m.path)
        assert e.value.errno == 107  # ENOTCONN
    finally:
        if m.proc:
            m.proc.kill()
            m.proc.wait()
        util.umount(m.path)
    assert not util.is_mounted(m.path)


@pytest.fixture
def system_kvfs():
    with sysmount.build_kvfs_in_path(util.kvfs_binary()), \
            sysmount.subreaper():
        yield


def test_auto_unmount_through_mount_t_fuse_kvfs(system_kvfs, az, tmp_path):
    """The daemon forks away from mount(8) after mounting; fusermount3's
    watcher still unmounts when it dies."""
    path = str(tmp_path / "mnt")
    os.mkdir(path)
    env = clean_env()
    m = sysmount.mount(["-t", "fuse.kvfs", az.info["vault_url"], path, "-o",
                        option_string(secret_options(az)) + ",auto_unmount"],
                       path, env)
    try:
        read_cert(path)
        os.kill(m.pid, signal.SIGKILL)
        assert m.wait_exit() == -signal.SIGKILL
        util.wait_until(lambda: not util.is_mounted(path), 30,
                        "the mount goes once kvfs is killed")
    finally:
        m.cleanup()


def test_s_is_accepted_and_serves(fake, tmp_path):
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    errpath = str(tmp_path / "kvfs.stderr")
    args = util.kvfs_command() + [
        "-f", "-s", "-o", option_string(secret_options(fake)),
        fake.info["vault_url"], str(mnt)]
    with open(errpath, "w") as err:
        proc = subprocess.Popen(args, env=clean_env(),
                                stdin=subprocess.DEVNULL, stdout=err,
                                stderr=err)
    m = util.Mount(proc, str(mnt), errpath)
    try:
        m.wait_mounted()
        read_cert(m.path)
    finally:
        m.unmount()


@pytest.mark.parametrize("opt", ["umask=0077", "file_mode=0440",
                                 "dir_mode=0550"])
def test_mode_options_are_refused_pointing_at_key_mode(fake, tmp_path, opt):
    r = run_kvfs(["-f", "-o", opt, fake.info["vault_url"], str(tmp_path)])
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1, r.stderr
    name = opt.split("=")[0]
    assert ("unsupported option '%s'" % name) in lines[0]
    assert "key_mode=" in lines[0] and "uid=" in lines[0]
    assert not util.is_mounted(str(tmp_path))


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version_names_the_libraries(flag):
    r = run_kvfs([flag])
    assert r.returncode == 0
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"kvfs version \S+", lines[0]), r.stdout
    fuse = subprocess.run(["pkg-config", "--modversion", "fuse3"],
                          capture_output=True, text=True)
    want = fuse.stdout.strip() if fuse.returncode == 0 else r"3\.\d+\.\d+"
    assert re.fullmatch(r"libfuse %s" % want, lines[1]), r.stdout
    assert re.fullmatch(r"libcurl \S+ \(OpenSSL/\S+\)", lines[2]), r.stdout
    assert lines[3].startswith("OpenSSL 3."), r.stdout
