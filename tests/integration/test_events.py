""".kvfs/events: each open is a reader whose queue starts empty; once a
revalidation's change is visible in the tree every reader gets one JSON
line for it (added, removed, rotated, enabled, disabled), and expired when
a certificate's exp passes, with no vault request.  A read waits for a
line; O_NONBLOCK gives EAGAIN; poll() says POLLIN once a line is queued.
A reader that does not read gets at most 1,024 lines, then one overflow
line.  A waiting reader killed by a signal, SIGTERM or an unmount leaves
nothing hanging.

Readers that wait are processes (cat), so that a test can always end them;
the in-process ones never wait (O_NONBLOCK).  No assertion is on elapsed
time: every wait is for the line itself, with a generous deadline.  The
module has its own fake, because its tests change the vault."""

import errno
import json
import os
import select
import signal
import subprocess
import time

import pytest

from client import FakeAzure
from conftest import start_mount
import util
from util import vault_log, wait_until

EVENTS = (".kvfs", "events")
ALL = "all"


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeAzure(str(tmp_path_factory.mktemp("fake-events")), bulk=3) as f:
        yield f
        assert "Traceback" not in f.output(), f.output()


class Cat:
    """cat .kvfs/events into a file: a reader that waits in read()."""

    def __init__(self, m, tmp_path, name="cat", wait=True):
        self.out = tmp_path / (name + ".out")
        self.err = tmp_path / (name + ".err")
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(["cat", m.p(*EVENTS)], stdout=out,
                                         stderr=err,
                                         stdin=subprocess.DEVNULL)
        if wait:
            wait_until(self.opened, 20, "cat opened .kvfs/events")

    def opened(self):
        fds = "/proc/%d/fd" % self.proc.pid
        try:
            return any(os.readlink(os.path.join(fds, fd)).endswith(
                "/.kvfs/events") for fd in os.listdir(fds))
        except FileNotFoundError:
            return False

    def text(self):
        return self.out.read_text()

    def lines(self):
        text = self.text()
        # only whole lines
        return [json.loads(l) for l in text[:text.rfind("\n") + 1].splitlines()]

    def wait(self, n, what, timeout=60):
        return wait_until(lambda: len(self.lines()) >= n and self.lines(),
                          timeout, what)

    def in_read(self):
        """Whether cat waits in read(2) (syscall 0 on x86-64)."""
        try:
            with open("/proc/%d/syscall" % self.proc.pid) as f:
                return f.read().split()[0] == "0"
        except (FileNotFoundError, IndexError, ProcessLookupError):
            return False

    def wait_in_read(self):
        wait_until(self.in_read, 20, "cat waits in read()")
        return self

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30 * util.SLOW)


@pytest.fixture
def cats(tmp_path):
    made = []

    def _cat(m, name="cat", wait=True):
        c = Cat(m, tmp_path, name, wait)
        made.append(c)
        return c

    yield _cat
    for c in made:
        c.stop()


def metrics(m):
    with open(m.p(".kvfs", "metrics")) as f:
        return f.read()


def hup(m):
    m.proc.send_signal(signal.SIGHUP)


def check_line(e, collection, name, change, version=None):
    assert e["collection"] == collection and e["name"] == name, e
    assert e["change"] == change, e
    assert list(e)[:4] == ["time", "collection", "name", "change"], e
    assert time.strptime(e["time"], "%Y-%m-%dT%H:%M:%SZ")
    if version is not None:
        assert e["version"] == version, e


def test_rotation_gives_one_rotated_line(mount, az, cats):
    m = mount(collections=ALL)
    cat = cats(m)
    az.rotate("www")
    hup(m)
    (e,) = cat.wait(1, "the rotated line")
    check_line(e, "certificates", "www", "rotated",
               az.certificate("www")["latest"])
    # the tree shows the new version when the line is there
    assert os.getxattr(m.p("certificates", "www"),
                       "user.kvfs.version").decode() == e["version"]
    # a barrier: one more change; still only one line for www
    az.rotate("api")
    hup(m)
    lines = cat.wait(2, "the second line")
    assert len(lines) == 2
    check_line(lines[1], "certificates", "api", "rotated",
               az.certificate("api")["latest"])
    text = metrics(m)
    assert 'kvfs_events_total{change="rotated"} 2\n' in text
    assert "kvfs_event_overflows_total 0\n" in text


def test_added_removed_disabled_enabled(mount, az, cats):
    m = mount(collections=ALL)
    cat = cats(m)
    az.create("ev-new")
    hup(m)
    (e,) = cat.wait(1, "added")
    check_line(e, "certificates", "ev-new", "added",
               az.certificate("ev-new")["latest"])
    az.disable("ev-new")
    hup(m)
    e = cat.wait(2, "disabled")[1]
    check_line(e, "certificates", "ev-new", "disabled")
    az.enable("ev-new")
    hup(m)
    e = cat.wait(3, "enabled")[2]
    check_line(e, "certificates", "ev-new", "enabled",
               az.certificate("ev-new")["latest"])
    version = e["version"]
    az.delete("ev-new")
    hup(m)
    e = cat.wait(4, "removed")[3]
    check_line(e, "certificates", "ev-new", "removed", version)
    assert len(cat.lines()) == 4


def test_secrets_and_keys(mount, az, cats):
    m = mount(collections=ALL)
    cat = cats(m)
    az.rotate("db-password", kind="secrets", value="new horse battery")
    hup(m)
    (e,) = cat.wait(1, "the secret's line")
    check_line(e, "secrets", "db-password", "rotated",
               az.secret("db-password")["latest"])
    az.create_key("ev-key", kty="EC")
    hup(m)
    e = cat.wait(2, "the key's line")[1]
    check_line(e, "keys", "ev-key", "added", az.key("ev-key")["latest"])
    az.disable("ev-key", kind="keys")
    hup(m)
    check_line(cat.wait(3, "disabled key")[2], "keys", "ev-key", "disabled")
    az.create_secret("ev-secret", value="s3cr3t-value-never-shown")
    hup(m)
    check_line(cat.wait(4, "added secret")[3], "secrets", "ev-secret",
               "added", az.secret("ev-secret")["latest"])
    az.delete("ev-secret", kind="secrets")
    az.delete("ev-key", kind="keys")
    hup(m)
    lines = cat.wait(6, "two removed")
    assert sorted((e["collection"], e["name"], e["change"])
                  for e in lines[4:]) == [("keys", "ev-key", "removed"),
                                          ("secrets", "ev-secret", "removed")]
    # never a value
    text = cat.text()
    for v in ("s3cr3t-value-never-shown", "new horse battery",
              "correct horse battery staple"):
        assert v not in text


def test_a_reader_sees_only_what_comes_after_its_open(mount, az, cats):
    m = mount(collections=ALL)
    first = cats(m, "first")
    az.rotate("www")
    hup(m)
    first.wait(1, "the first reader's line")
    second = cats(m, "second")
    third = cats(m, "third")
    az.rotate("api")
    hup(m)
    a = first.wait(2, "the first reader's second line")
    b = second.wait(1, "the second reader's line")
    c = third.wait(1, "the third reader's line")
    assert [e["name"] for e in a] == ["www", "api"]
    # each its own copy, and nothing from before its open
    assert b == c == a[1:]


def test_nonblock_and_poll(mount, az):
    m = mount(collections=ALL)
    fd = os.open(m.p(*EVENTS), os.O_RDONLY | os.O_NONBLOCK)
    try:
        with pytest.raises(BlockingIOError) as e:
            os.read(fd, 4096)
        assert e.value.errno == errno.EAGAIN
        p = select.poll()
        p.register(fd, select.POLLIN)
        assert p.poll(200) == []
        az.rotate("www")
        hup(m)
        # waits for the event itself: poll() ends with it
        deadline = time.monotonic() + 60 * util.SLOW
        got = []
        while not got:
            assert time.monotonic() < deadline, "poll never said POLLIN"
            got = p.poll(1000)
        assert got == [(fd, select.POLLIN)]
        line = os.read(fd, 4096).decode()
        assert line.endswith("\n") and line.count("\n") == 1
        check_line(json.loads(line), "certificates", "www", "rotated")
        with pytest.raises(BlockingIOError):
            os.read(fd, 4096)
        assert p.poll(0) == []
        # select() says the same
        assert select.select([fd], [], [], 0)[0] == []
    finally:
        os.close(fd)


def test_small_reads_take_a_line_in_pieces(mount, az):
    m = mount(collections=ALL)
    fd = os.open(m.p(*EVENTS), os.O_RDONLY | os.O_NONBLOCK)
    try:
        az.rotate("www")
        az.rotate("api")
        hup(m)
        p = select.poll()
        p.register(fd, select.POLLIN)
        wait_until(lambda: p.poll(0), 60, "a line queued")
        first = os.read(fd, 10)
        assert len(first) == 10
        rest = b""
        while not rest.endswith(b"\n"):
            piece = os.read(fd, 7)
            assert 0 < len(piece) <= 7 and b"\n" not in piece[:-1]
            rest += piece
        lines = [json.loads(first + rest)]
        # then whole lines again
        wait_until(lambda: p.poll(0), 60, "the second line queued")
        lines.append(json.loads(os.read(fd, 4096)))
        assert sorted(e["name"] for e in lines) == ["api", "www"]
        assert all(e["change"] == "rotated" for e in lines)
    finally:
        os.close(fd)


def test_overflow(tmp_path):
    """1,100 secrets added at once to a reader that does not read."""
    m = None
    with FakeAzure(str(tmp_path / "fake-overflow"), bulk=0) as big:
        try:
            (tmp_path / "mnt").mkdir()
            m = start_mount(big, tmp_path / "mnt", str(tmp_path / "err"),
                            collections="secrets").wait_mounted()
            fd = os.open(m.p(*EVENTS), os.O_RDONLY | os.O_NONBLOCK)
            try:
                for i in range(1100):
                    big.create_secret("ov-%04d" % i, value="v%d" % i)
                hup(m)
                # not a byte read before the queue is full
                wait_until(lambda: "kvfs_event_overflows_total 1\n" in
                           metrics(m), 300, "the reader overflowed")
                p = select.poll()
                p.register(fd, select.POLLIN)
                assert p.poll(0) == [(fd, select.POLLIN)]
                text = b""
                deadline = time.monotonic() + 300 * util.SLOW
                while b'"overflow"' not in text:
                    assert time.monotonic() < deadline, "no overflow line"
                    try:
                        text += os.read(fd, 65536)
                    except BlockingIOError:
                        p.poll(1000)
                lines = [json.loads(l) for l in text.decode().splitlines()]
            finally:
                os.close(fd)
            assert len(lines) == 1025
            assert all(e["change"] == "added" for e in lines[:1024])
            assert len({e["name"] for e in lines[:1024]}) == 1024
            assert set(lines[1024]) == {"time", "change"}
            assert lines[1024]["change"] == "overflow"
            assert "kvfs_event_overflows_total 1\n" in metrics(m)
            # the versions of at most 64 objects of one revalidation are
            # fetched for the lines; the other 1,036 cost no GET
            gets = [e for e in vault_log(big)
                    if e["method"] == "GET" and "/secrets/ov-" in e["path"]]
            assert len(gets) == 64
            assert sum("version" in e for e in lines[:1024]) == 64
        finally:
            if m:
                m.unmount()


def test_expired_without_a_request(mount, az, cats):
    m = mount(collections=ALL)
    cat = cats(m)
    # a certificate that expires a few seconds after it is added (the
    # timer follows the change)
    # (margin for a loaded machine: added after its exp, it never expires)
    exp = int(time.time()) + 30
    az.create("ev-soon", exp=exp, nbf=exp - 86400)
    try:
        hup(m)
        (e,) = cat.wait(1, "the added line")
        check_line(e, "certificates", "ev-soon", "added")
        version = e["version"]
        az.reset_log()
        e = cat.wait(2, "the expired line", timeout=120)[1]
        check_line(e, "certificates", "ev-soon", "expired", version)
        assert time.time() >= exp
        assert vault_log(az) == []
        # once
        az.rotate("www")
        hup(m)
        assert [x["name"] for x in cat.wait(3, "a barrier")] == [
            "ev-soon", "ev-soon", "www"]
    finally:
        az.delete("ev-soon")


def test_killed_reader_does_not_stall_the_mount(mount, az, cats):
    m = mount(collections=ALL)
    for sig in (signal.SIGINT, signal.SIGKILL):
        cat = cats(m, "killed%d" % sig).wait_in_read()
        cat.proc.send_signal(sig)
        assert cat.proc.wait(timeout=30 * util.SLOW) == -sig
    # as many waiting readers as may wait still leave the mount served
    many = [cats(m, "many%d" % i).wait_in_read() for i in range(16)]
    assert "www" in os.listdir(m.p("certificates"))
    with open(m.p("certificates", "www", "cert.pem")) as f:
        assert f.read().startswith("-----BEGIN CERTIFICATE-----")
    with open(m.p(".kvfs", "status")) as f:
        assert json.load(f)["certificates"] > 0
    # one more read than may wait gets EAGAIN at once, never a stall
    one_more = cats(m, "one-more", wait=False)
    assert one_more.proc.wait(timeout=30 * util.SLOW) != 0
    assert "Resource temporarily unavailable" in one_more.err.read_text()
    assert all(c.proc.poll() is None for c in many)
    # a change reaches them all
    az.rotate("www")
    hup(m)
    for c in many:
        check_line(c.wait(1, "the line")[0], "certificates", "www", "rotated")
    # and the mount unmounts (the fixture checks that the daemon exits 0)


def test_sigterm_with_a_waiting_reader(mount, az, cats):
    m = mount(collections=ALL)
    cat = cats(m).wait_in_read()
    m.proc.send_signal(signal.SIGTERM)
    # the daemon exits; the reader's read ends (EOF or an error)
    assert m.proc.wait(timeout=30 * util.SLOW) == 0
    cat.proc.wait(timeout=30 * util.SLOW)
    m.proc = None
    util.umount(m.path)


def test_lazy_unmount_with_a_waiting_reader(mount, az, cats):
    m = mount(collections=ALL)
    cat = cats(m).wait_in_read()
    util.umount(m.path)  # fusermount3 -u -z: returns at once
    assert not util.is_mounted(m.path)
    # the reader keeps the file open; once it is gone the daemon ends
    cat.proc.send_signal(signal.SIGINT)
    cat.proc.wait(timeout=30 * util.SLOW)
    assert m.proc.wait(timeout=30 * util.SLOW) == 0
    m.proc = None
