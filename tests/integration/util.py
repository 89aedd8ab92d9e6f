"""Mount helpers for the integration tests, in the style of sshfs's
test/util.py: start kvfs for real, wait for the mount, always unmount, and
fail when the daemon printed a sanitizer report."""

import os
import re
import shlex
import subprocess
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


def read_concurrently(fn, args):
    """Call fn(arg) for every arg at once from its own thread, released
    together by a barrier; returns the errors as "arg: repr" strings."""
    import threading

    errors = []
    barrier = threading.Barrier(len(args))

    def run(arg):
        barrier.wait()
        try:
            fn(arg)
        except Exception as e:  # noqa: BLE001 - collected for the caller
            errors.append("%s: %r" % (arg, e))

    threads = [threading.Thread(target=run, args=(a,)) for a in args]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors
