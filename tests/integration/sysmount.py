"""Mounting through the system's mount(8), for test_mount.py (the build's
kvfs) and test_package.py (the installed package).

mount -t fuse.kvfs runs mount.fuse3, which runs kvfs from the PATH mount(8)
sets, and kvfs puts itself in the background: the daemon is nobody's child.
To see how it exits, the test process becomes a child subreaper
(PR_SET_CHILD_SUBREAPER) while it mounts, so the orphaned daemon is
re-parented to it and its exit status can be collected with waitpid()."""

import contextlib
import ctypes
import fcntl
import glob
import os
import subprocess
import time

import util

PR_SET_CHILD_SUBREAPER = 36
LOCAL_SBIN_KVFS = "/usr/local/sbin/kvfs"
LOCK = "/run/lock/kvfs-test-system-kvfs.lock"

_libc = ctypes.CDLL(None, use_errno=True)


@contextlib.contextmanager
def subreaper():
    if _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    try:
        yield
    finally:
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@contextlib.contextmanager
def build_kvfs_in_path(binary):
    """/usr/local/sbin/kvfs -> the build's kvfs, only while the block runs,
    under a lock so that two test runs never fight over it.  An existing
    file there that is not a symlink is somebody's: refuse to touch it."""
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.lexists(LOCAL_SBIN_KVFS):
            if not os.path.islink(LOCAL_SBIN_KVFS):
                raise RuntimeError("%s exists and is not ours; remove it to "
                                   "run these tests" % LOCAL_SBIN_KVFS)
            os.unlink(LOCAL_SBIN_KVFS)  # left by a run that was killed
        os.symlink(os.path.realpath(binary), LOCAL_SBIN_KVFS)
        try:
            yield
        finally:
            if os.path.islink(LOCAL_SBIN_KVFS):
                os.unlink(LOCAL_SBIN_KVFS)


def kvfs_pids(mountpoint=None):
    """Running kvfs processes (by the executable's name), optionally only
    those serving mountpoint."""
    pids = []
    for d in glob.glob("/proc/[0-9]*"):
        try:
            with open(d + "/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            if os.path.basename(os.readlink(d + "/exe")) != "kvfs":
                continue
        except OSError:
            continue
        if mountpoint is None or os.fsencode(mountpoint) in argv:
            pids.append(int(os.path.basename(d)))
    return pids


def sanitizer_env(logdir):
    """Sanitizer reports of a daemonized kvfs go to files in logdir (its
    stderr is /dev/null); harmless for a build without sanitizers."""
    env = dict(os.environ)
    for var in ("ASAN_OPTIONS", "UBSAN_OPTIONS"):
        prev = env.get(var, "")
        env[var] = (prev + ":" if prev else "") + "log_path=%s/%s" % (
            logdir, var.split("_")[0].lower())
    return {k: v for k, v in env.items() if not k.startswith("AZURE_")}


def check_sanitizer_logs(logdir):
    for path in glob.glob(os.path.join(logdir, "*san.*")):
        with open(path, errors="replace") as f:
            util.check_sanitizer_output(f.read())


class SystemMount:
    """A kvfs daemon started by mount(8) on path; nobody's child but ours
    once orphaned (see subreaper())."""

    def __init__(self, path, pid):
        self.path = path
        self.pid = pid

    def p(self, *parts):
        return os.path.join(self.path, *parts)

    def wait_exit(self, timeout=15.0):
        """The daemon's exit code; it must end within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid == self.pid:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.02)
        raise AssertionError("kvfs (pid %d) did not exit" % self.pid)

    def cleanup(self):
        """After a failed test: every kvfs stacked on the path (a broken
        mount -a could stack several) unmounted, its daemons killed."""
        for _ in range(8):
            if not util.is_mounted(self.path):
                break
            subprocess.run(["umount", "-l", self.path], check=False)
        for pid in set([self.pid] + kvfs_pids(self.path)):
            try:
                os.kill(pid, 9)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def mount(args, path, env, timeout=60):
    """Run mount(8) with args; on success return the SystemMount of path.
    Must run inside subreaper()."""
    r = subprocess.run(["mount"] + args, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, "mount %s failed (%d):\n%s%s" % (
        " ".join(args), r.returncode, r.stdout, r.stderr)
    assert util.is_mounted(path), "mount returned 0 but %s is not mounted" % path
    pids = kvfs_pids(path)
    assert len(pids) == 1, "kvfs daemons serving %s: %s" % (path, pids)
    return SystemMount(path, pids[0])
