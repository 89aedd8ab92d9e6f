"""The process is not dumpable and writes no core file.

/proc/PID/status does not show the dumpable flag, but the kernel gives every
file under /proc/PID to root:root instead of the process's user when the
process is not dumpable (proc(5)).  As root that is invisible, so kvfs runs
here as nobody, stuck in its start-up against a server that accepts and
never answers, while a plain process of nobody is the control."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import pytest

import util

NOBODY = 65534


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never says a word."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(16)
    held, stop = [], threading.Event()

    def loop():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    t.join()
    for c in held:
        c.close()
    srv.close()


@pytest.fixture
def nobody_dir():
    """A directory of nobody's (pytest's are inside root's 0700 ones)."""
    d = tempfile.mkdtemp(prefix="kvfs-test-nobody-")
    os.chmod(d, 0o755)
    os.chown(d, NOBODY, NOBODY)
    secret = os.path.join(d, "secret")
    with open(secret, "w") as f:
        f.write("not-a-real-secret\n")
    os.chown(secret, NOBODY, NOBODY)
    os.chmod(secret, 0o600)
    # a copy of kvfs: the build tree may be in a directory nobody cannot enter
    shutil.copy(util.kvfs_binary(), os.path.join(d, "kvfs"))
    os.chmod(os.path.join(d, "kvfs"), 0o755)
    yield d
    shutil.rmtree(d)


def proc_owner(pid):
    return os.stat("/proc/%d/environ" % pid).st_uid


def wait_running_as(pid, uid, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open("/proc/%d/status" % pid) as f:
            uids = next(l for l in f if l.startswith("Uid:")).split()[1:]
        if int(uids[1]) == uid:
            return
        time.sleep(0.02)
    raise AssertionError("pid %d never ran as uid %d" % (pid, uid))


def spawn_as_nobody(args, cwd):
    return subprocess.Popen(args, user=NOBODY, group=NOBODY, extra_groups=[],
                            cwd=cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={"PATH": "/usr/bin:/bin"})


def test_kvfs_is_not_dumpable_and_has_no_core_limit(silent_server,
                                                   nobody_dir):
    url = "https://127.0.0.1:%d" % silent_server
    control = spawn_as_nobody(["sleep", "30"], str(nobody_dir))
    kvfs = spawn_as_nobody(
        [os.path.join(nobody_dir, "kvfs"), "-f", "-o",
         "auth=secret,tenant=t,client_id=c,secret_file=%s/secret,"
         "authority=%s,resource=https://vault.azure.net,deadline=30"
         % (nobody_dir, url), url, str(nobody_dir)], str(nobody_dir))
    try:
        wait_running_as(control.pid, NOBODY)
        wait_running_as(kvfs.pid, NOBODY)
        # give kvfs time to get past main()'s first lines; it then waits
        # on the silent server
        time.sleep(0.5)
        assert kvfs.poll() is None, kvfs.stdout.read().decode()
        assert proc_owner(control.pid) == NOBODY, \
            "the control process: /proc/PID should be nobody's"
        assert proc_owner(kvfs.pid) == 0, \
            "kvfs is dumpable: /proc/PID/environ belongs to its user"
        with open("/proc/%d/limits" % kvfs.pid) as f:
            core = next(l for l in f if l.startswith("Max core file size"))
        assert core.split()[4:6] == ["0", "0"], core
    finally:
        for p in (kvfs, control):
            p.kill()
            p.wait()
