"""systemd's notify protocol (kvfs@.service is Type=notify): kvfs -f with
NOTIFY_SOCKET naming a datagram socket the test binds sends READY=1 with a
STATUS= of what it shows only once the mount exists, RELOADING=1 with
MONOTONIC_USEC= before a SIGHUP's revalidation and READY=1 after it, and
STOPPING=1 when SIGTERM unmounts it; the on_change= command does not see
NOTIFY_SOCKET.  Every check is made on the datagram's receipt, in the
order they came: no assertion on elapsed time.

The module has its own fake, because it rotates a certificate."""

import os
import re
import signal
import socket
import time

import pytest

from client import FakeAzure
from conftest import start_mount
import util
from util import wait_until


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeAzure(str(tmp_path_factory.mktemp("fake-notify")), bulk=5) as f:
        yield f
        assert "Traceback" not in f.output(), f.output()


def receive(sock):
    """The next datagram as {field: value}, in the order of its lines;
    an AssertionError when none comes within the (generous) deadline."""
    try:
        data = sock.recv(4096).decode()
    except socket.timeout:
        raise AssertionError("no notify datagram")
    fields = {}
    for line in data.split("\n"):
        k, v = line.split("=", 1)
        fields[k] = v
    return fields


def monotonic_us():
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def check_status(status, mnt):
    """STATUS= names the certificates the mount shows and the token's
    expiry (RFC 3339, UTC)."""
    n = len(os.listdir(os.path.join(mnt, "certificates")))
    assert re.match(r"%d certificates\b" % n, status), status
    assert re.search(
        r"; token valid until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", status), \
        status


def test_notify(fake, tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    addr = str(tmp_path / "notify")
    sock.bind(addr)
    sock.settimeout(60 * util.SLOW)
    out = tmp_path / "out"
    out.mkdir()
    cmd = tmp_path / "bin" / "cmd"
    cmd.parent.mkdir()
    # written whole, then renamed: the test waits for the name
    cmd.write_text("#!/bin/sh\nenv > %s/env.part && mv %s/env.part %s/env\n"
                   % (out, out, out))
    os.chmod(cmd, 0o755)
    os.chmod(cmd.parent, 0o755)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    m = start_mount(fake, mnt, str(tmp_path / "kvfs.stderr"),
                    env={"NOTIFY_SOCKET": addr}, on_change=str(cmd),
                    on_change_delay=1)
    try:
        ready = receive(sock)
        # at receipt: the mount exists and answers
        assert util.is_mounted(str(mnt)), m.stderr()
        assert os.path.isdir(m.p("certificates"))
        assert list(ready) == ["READY", "STATUS"], ready
        assert ready["READY"] == "1"
        check_status(ready["STATUS"], str(mnt))

        fake.rotate("www")
        before = monotonic_us()
        m.proc.send_signal(signal.SIGHUP)
        reloading = receive(sock)
        after = monotonic_us()
        assert list(reloading) == ["RELOADING", "MONOTONIC_USEC"], reloading
        assert reloading["RELOADING"] == "1"
        # CLOCK_MONOTONIC in microseconds, taken after the signal was sent
        assert before <= int(reloading["MONOTONIC_USEC"]) <= after
        again = receive(sock)
        assert list(again) == ["READY", "STATUS"], again
        check_status(again["STATUS"], str(mnt))

        # the rotation ran the on_change= command: not in systemd's name
        wait_until(lambda: (out / "env").exists(), 30, "the on_change run")
        env = dict(l.split("=", 1)
                   for l in (out / "env").read_text().splitlines())
        assert env["KVFS_MOUNTPOINT"] == str(mnt)
        assert "NOTIFY_SOCKET" not in env, env

        m.proc.send_signal(signal.SIGTERM)
        assert receive(sock) == {"STOPPING": "1"}
        code = m.proc.wait(timeout=30 * util.SLOW)
        m.proc = None
        assert code == 0, m.stderr()
        assert not util.is_mounted(str(mnt))
        util.check_sanitizer_output(m.stderr())
    finally:
        if m.proc is not None:
            m.unmount()
        sock.close()


def test_no_notify_socket_is_no_obstacle(fake, tmp_path):
    """A NOTIFY_SOCKET nobody listens on (systemd gone) or that names no
    absolute path: the mount is served all the same."""
    for value in (str(tmp_path / "nobody"), "relative"):
        mnt = tmp_path / ("mnt-" + os.path.basename(value))
        mnt.mkdir()
        m = start_mount(fake, mnt, str(mnt) + ".stderr",
                        env={"NOTIFY_SOCKET": value}).wait_mounted()
        try:
            assert os.listdir(m.p("certificates"))
        finally:
            m.unmount()


def test_journal_stream_means_syslog_once_mounted(fake, tmp_path):
    """kvfs -f whose stderr is the journal ($JOURNAL_STREAM names its
    device and inode) logs through syslog once mounted, like a daemonized
    kvfs, so that the journal keeps each line's priority; a
    $JOURNAL_STREAM naming another file changes nothing."""
    other = tmp_path / "other"
    other.write_text("")
    for name, journal in (("other", False), ("journal", True)):
        errpath = tmp_path / (name + ".stderr")
        errpath.write_text("")
        ino = os.stat(errpath).st_ino
        st = os.stat(errpath if journal else other)
        mnt = tmp_path / ("mnt-" + name)
        mnt.mkdir()
        m = start_mount(fake, mnt, str(errpath), loglevel="info",
                        env={"JOURNAL_STREAM": "%d:%d" % (st.st_dev,
                                                          st.st_ino)})
        # start_mount() truncates the file: the inode stays
        assert os.stat(errpath).st_ino == ino
        m.wait_mounted()
        try:
            assert os.listdir(m.p("certificates"))
        finally:
            m.unmount()
        mounted = "mounted '%s'" % fake.info["vault_url"] in m.stderr()
        assert mounted != journal, m.stderr()
