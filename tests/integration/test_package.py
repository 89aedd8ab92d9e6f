"""The installed Debian package, used the way an administrator uses it:
mount -t fuse.kvfs and an fstab line through the system's mount(8), with
/usr/bin/kvfs, the man page and the unit from the package and nothing from
the build tree.

Collected only with KVFS_INSTALLED=1 (conftest.py; the meson suite
'package', which CI runs after apt-get install ./kvfs_*.deb).  There, a missing or shadowed package
is a failure, not a skip."""

import os
import shutil
import subprocess
import tempfile

import pytest

import sysmount
import util
from conftest import option_string, secret_options

INSTALLED = {
    "/usr/bin/kvfs",
    "/lib/systemd/system/kvfs@.service",
    "/usr/share/man/man8/kvfs.8.gz",
}


@pytest.fixture(scope="module")
def installed():
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", "kvfs"],
                       capture_output=True, text=True)
    assert r.stdout == "install ok installed", \
        "the kvfs package is not installed: %s%s" % (r.stdout, r.stderr)
    files = set(subprocess.run(["dpkg", "-L", "kvfs"], check=True,
                               capture_output=True, text=True).stdout.split())
    missing = INSTALLED - files
    assert not missing, "the package lacks %s" % sorted(missing)
    # the README's `install -m 0600 /dev/null /etc/kvfs/myvault.secret`
    assert "/etc/kvfs" in files, "the package lacks /etc/kvfs"
    assert oct(os.stat("/etc/kvfs").st_mode & 0o7777) == "0o700"
    # mount(8)'s PATH puts /usr/local first: nothing may shadow the package
    for d in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin"):
        assert not os.path.lexists(os.path.join(d, "kvfs")), \
            "%s/kvfs would run instead of the package's" % d
    with sysmount.subreaper():
        yield


@pytest.fixture
def env(tmp_path):
    logdir = tmp_path / "sanitizers"
    logdir.mkdir()
    env = sysmount.sanitizer_env(str(logdir))
    env.pop("KVFS_BINARY", None)
    yield env
    sysmount.check_sanitizer_logs(str(logdir))


def end(m):
    subprocess.run(["umount", m.path], check=True)
    assert m.wait_exit() == 0
    assert not util.is_mounted(m.path)
    assert sysmount.kvfs_pids(m.path) == []


def test_mount_t_fuse_kvfs_with_the_installed_kvfs(installed, az, env,
                                                  tmp_path):
    path = str(tmp_path / "mnt")
    os.mkdir(path)
    m = sysmount.mount(["-t", "fuse.kvfs", az.info["vault_url"], path, "-o",
                        option_string(secret_options(az)) + ",allow_other"],
                       path, env)
    try:
        assert os.readlink("/proc/%d/exe" % m.pid) == "/usr/bin/kvfs"
        with open(os.path.join(path, "certificates", "www", "cert.pem")) as f:
            assert f.read().startswith("-----BEGIN CERTIFICATE-----")
        end(m)
    finally:
        m.cleanup()


def test_fstab_line_and_a_systemd_credential(installed, az, env, tmp_path):
    """What kvfs@.service with LoadCredential= amounts to: the secret in
    $CREDENTIALS_DIRECTORY/kvfs-client-secret, no secret_file= option."""
    path = str(tmp_path / "mnt")
    os.mkdir(path)
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o500)
    shutil.copy(az.info["apps"]["secret"]["secret_file"],
                creds / "kvfs-client-secret")
    os.chmod(creds / "kvfs-client-secret", 0o400)
    opts = secret_options(az)
    del opts["secret_file"]
    fstab = tmp_path / "fstab"
    fstab.write_text("%s %s fuse.kvfs %s,_netdev,nofail 0 0\n" % (
        az.info["vault_url"], path, option_string(opts)))
    env["CREDENTIALS_DIRECTORY"] = str(creds)

    r = subprocess.run(["mount", "-a", "-T", str(fstab)], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    pids = sysmount.kvfs_pids(path)
    assert len(pids) == 1
    m = sysmount.SystemMount(path, pids[0])
    try:
        assert "www" in os.listdir(os.path.join(path, "certificates"))
        end(m)
    finally:
        m.cleanup()


def test_installed_man_page_renders(installed):
    r = subprocess.run(["man", "-w", "kvfs"], capture_output=True, text=True)
    assert r.stdout.strip() == "/usr/share/man/man8/kvfs.8.gz", r.stderr
    r = subprocess.run(["man", "--warnings", "8", "kvfs"],
                       env=dict(os.environ, MANWIDTH="80"),
                       capture_output=True, text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    assert "fuse.kvfs" in r.stdout


def test_installed_unit_verifies(installed):
    d = tempfile.mkdtemp()
    try:
        unit = os.path.join(d, "kvfs@run-kv.service")
        shutil.copy("/lib/systemd/system/kvfs@.service", unit)
        r = subprocess.run(["systemd-analyze", "verify", unit],
                           capture_output=True, text=True)
        assert r.returncode == 0 and r.stdout + r.stderr == "", \
            r.stdout + r.stderr
    finally:
        shutil.rmtree(d)
