"""Mount helpers for the integration tests, in the style of sshfs's
test/util.py: start kvfs for real, wait for the mount, always unmount, and
fail when the daemon printed a sanitizer report; and what several test
modules share: a daemonized kvfs, the vault's requests in the fake's log,
readers released together."""

import contextlib
import ctypes
import os
import re
import shlex
import struct
import subprocess
import threading
import time

SANITIZER_MARKS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "WARNING: ThreadSanitizer",
    "==ERROR",
)

# Under valgrind -q (KVFS_WRAPPER), everything valgrind prints but a
# warning is an error report: invalid accesses, uninitialised values, and
# definite leaks (--errors-for-leak-kinds=definite).
VALGRIND_REPORT = re.compile(r"^==\d+== (?!Warning: )\S", re.M)


LIBC = ctypes.CDLL(None, use_errno=True)
SYS_GETDENTS64 = {"x86_64": 217, "aarch64": 61}


def getdents(fd, size=1024):
    """The names one getdents64(2) of size bytes gives ([] at the end): a
    small buffer, so that the kernel reads a directory in several replies,
    at the offsets kvfs gave."""
    buf = ctypes.create_string_buffer(size)
    n = LIBC.syscall(SYS_GETDENTS64[os.uname().machine], fd, buf, size)
    if n < 0:
        raise OSError(ctypes.get_errno(), "getdents64")
    names, pos = [], 0
    while pos < n:
        reclen = struct.unpack_from("H", buf.raw, pos + 16)[0]
        name = buf.raw[pos + 19:pos + reclen].split(b"\0", 1)[0].decode()
        if name not in (".", ".."):
            names.append(name)
        pos += reclen
    return names


def kvfs_binary():
    path = os.environ.get("KVFS_BINARY")
    if not path:
        here = os.path.dirname(os.path.abspath(__file__))
        path = os.path.join(here, "..", "..", "build", "kvfs")
    if not os.access(path, os.X_OK):
        raise RuntimeError("kvfs binary not found at %s (set KVFS_BINARY)" % path)
    return os.path.abspath(path)


# How much longer the daemon takes to start and to stop under the wrapper
# (valgrind: start-up and the leak check at exit).
SLOW = 4 if os.environ.get("KVFS_WRAPPER") else 1


def kvfs_command(binary=None):
    """The argv that starts the daemon: KVFS_WRAPPER (for example
    "valgrind -q --error-exitcode=99 ..."; meson test --setup valgrind sets
    it), then the binary (kvfs_binary() by default)."""
    wrapper = shlex.split(os.environ.get("KVFS_WRAPPER", ""))
    return wrapper + [binary or kvfs_binary()]


def testhooks_binary():
    """kvfs-testhooks: the daemon with test-only hooks (tests/testhooks.c)."""
    path = os.environ.get("KVFS_TESTHOOKS_BINARY")
    if not path:
        path = os.path.join(os.path.dirname(kvfs_binary()), "tests", "kvfs-testhooks")
    if not os.access(path, os.X_OK):
        raise RuntimeError("kvfs-testhooks not found at %s (set KVFS_TESTHOOKS_BINARY)"
                           % path)
    return os.path.abspath(path)


def is_mounted(path):
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            mnt = fields[4].replace("\\040", " ")
            if mnt == path:
                return True
    return False


def mount_info(path):
    """(fstype, source, options) of the mount at path, or None."""
    path = os.path.realpath(path)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, right = line.split(" - ", 1)
            fields = left.split()
            if fields[4] == path:
                fstype, source, sopts = right.split()[:3]
                return fstype, source, fields[5] + "," + sopts
    return None


def check_sanitizer_output(text):
    for mark in SANITIZER_MARKS:
        if mark in text:
            raise AssertionError("kvfs printed a sanitizer report:\n" + text)
    if VALGRIND_REPORT.search(text):
        raise AssertionError("kvfs printed a valgrind report:\n" + text)


def umount(path):
    if is_mounted(path):
        subprocess.run(["fusermount3", "-u", "-z", path], check=False)


def wait_until(cond, timeout, what, step=0.05):
    """cond()'s first true value, polled every step seconds; an
    AssertionError naming what after timeout seconds (longer under
    KVFS_WRAPPER).  A deadline to fail by, never a time to assert."""
    deadline = time.monotonic() + timeout * SLOW
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("not within %.0f s: %s" % (timeout, what))
        time.sleep(step)


def wait_for_mount(proc, path, timeout=20.0, stderr_path=None):
    deadline = time.monotonic() + timeout * SLOW
    while time.monotonic() < deadline:
        if is_mounted(path):
            return
        if proc is not None and proc.poll() is not None:
            err = ""
            if stderr_path:
                with open(stderr_path, errors="replace") as f:
                    err = f.read()
            raise AssertionError(
                "kvfs exited with %d before mounting:\n%s" % (proc.returncode, err))
        time.sleep(0.02)
    raise AssertionError("%s was not mounted after %.0f s" % (path, timeout))


class Mount:
    """A running kvfs -f process and its mount point."""

    def __init__(self, proc, path, stderr_path):
        self.proc = proc
        self.path = path
        self.stderr_path = stderr_path

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def wait_mounted(self, timeout=20.0):
        """Wait for the mount (wait_for_mount()); returns self."""
        wait_for_mount(self.proc, self.path, timeout, self.stderr_path)
        return self

    def unmount(self, timeout=15.0):
        """Unmount and check that the daemon ended cleanly."""
        if self.proc is None:
            return
        umount(self.path)
        try:
            code = self.proc.wait(timeout=timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("kvfs did not exit after unmount:\n" + self.stderr())
        finally:
            self.proc = None
        text = self.stderr()
        check_sanitizer_output(text)
        assert code == 0, "kvfs exited with %d:\n%s" % (code, text)


@contextlib.contextmanager
def daemonized(opts, vault_url, path, env):
    """A context for kvfs without -f: runs it with the options string opts
    on the vault and the mount point path, asserts that the command
    returned 0 with path already mounted, and yields its CompletedProcess;
    at the end unmounts path and asserts that the daemon then ends (no
    process with path on its command line within 10 s).  The plain binary,
    never KVFS_WRAPPER: a daemon under the wrapper keeps the output
    open."""
    r = subprocess.run([kvfs_binary(), "-o", opts, vault_url, str(path)],
                       env=env, stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=60)
    try:
        assert r.returncode == 0, r.stderr
        assert is_mounted(str(path))
        yield r
    finally:
        umount(str(path))
    deadline = time.monotonic() + 10
    while True:
        out = subprocess.run(["pgrep", "-f", str(path)], capture_output=True,
                             text=True).stdout.strip()
        if not out or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    assert not out, "kvfs still running after unmount (a thread not stopped?)"


def vault_requests(fake):
    """The vault's requests in the fake's log as it stands."""
    return [e for e in fake.log() if e["server"] == "vault"]


def vault_log(fake):
    """The vault's requests, once the log has settled: the fake records a
    request just after answering it, so a reader may be back before the
    entry is."""
    log, deadline = fake.log(), time.monotonic() + 5
    while time.monotonic() < deadline:
        time.sleep(0.25)
        again = fake.log()
        if len(again) == len(log):
            break
        log = again
    return [e for e in log if e["server"] == "vault"]


def read_concurrently(fn, args, timeout=60.0):
    """Call fn(arg) for every arg at once from its own thread, released
    together by a barrier; returns the errors as "arg: repr" strings, and
    one for every call still running after timeout seconds."""
    errors = []
    barrier = threading.Barrier(len(args))

    def run(arg):
        barrier.wait()
        try:
            fn(arg)
        except Exception as e:  # noqa: BLE001 - collected for the caller
            errors.append("%s: %r" % (arg, e))

    threads = [threading.Thread(target=run, args=(a,), daemon=True) for a in args]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout * SLOW
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return errors + ["%s: still running after %.0f s" % (a, timeout * SLOW)
                     for a, t in zip(args, threads) if t.is_alive()]
