"""tests/demo.sh stop: the fake always ends, and a mount kept by an open
file is reported with what to do.  The demo's places are moved with
KVFS_DEMO_STATE and KVFS_DEMO_MNT; its own fake and mount stand in for the
ones the demo starts."""

import os
import subprocess

import pytest

import util
from client import FakeAzure
from conftest import start_mount

DEMO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "demo.sh")


def demo_stop(state, mnt):
    env = dict(os.environ, KVFS_DEMO_STATE=str(state), KVFS_DEMO_MNT=str(mnt))
    return subprocess.run([DEMO, "stop"], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def demo(tmp_path):
    """A fake whose pid is where demo.sh keeps it, and kvfs mounted on it."""
    state = tmp_path / "state"
    fake = FakeAzure(state, bulk=0).start()
    (state / "fake.pid").write_text("%d\n" % fake.proc.pid)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    m = start_mount(fake, mnt, str(tmp_path / "kvfs.stderr")).wait_mounted()
    yield fake, m, state, mnt
    if util.is_mounted(str(mnt)):
        m.unmount()
    fake.stop()


def test_demo_stop_with_a_file_open_ends_the_fake_and_says_what_to_do(demo):
    fake, m, state, mnt = demo
    with open(m.p("certificates", "www", "cert.pem")) as f:
        r = demo_stop(state, mnt)
        assert r.returncode == 1, r.stderr
        assert r.stderr.splitlines()[-1] == (
            "demo: fake Azure ended, but %s is still mounted: close files "
            "under %s, or fusermount3 -uz %s" % (mnt, mnt, mnt))
        assert r.stdout == ""
        # ended by the time the command returned
        assert fake.proc.poll() is not None
        assert not (state / "fake.pid").exists()
        assert util.is_mounted(str(mnt))
        assert f.read().startswith("-----BEGIN CERTIFICATE-----")
    r = demo_stop(state, mnt)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "demo stopped: %s unmounted, fake Azure ended\n" % mnt
    assert not util.is_mounted(str(mnt))
    assert m.proc.wait(15) == 0


def test_demo_stop_ends_mount_and_fake(demo):
    fake, m, state, mnt = demo
    r = demo_stop(state, mnt)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == "demo stopped: %s unmounted, fake Azure ended\n" % mnt
    assert fake.proc.poll() is not None
    assert not util.is_mounted(str(mnt))
    assert m.proc.wait(15) == 0
