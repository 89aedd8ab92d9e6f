"""The Kubernetes DaemonSet's mount propagation (deploy/kubernetes),
reproduced with mount namespaces on this machine, with the real start
script (deploy/kubernetes/kvfs-node-start) against the fake Azure.

The node's /run/kvfs is ROOT, a bind mount of its own made shared (what
kubelet makes of a Bidirectional hostPath).  The kvfs container is a mount
namespace copied from the node (`unshare --mount --propagation unchanged`),
so ROOT in it is a peer of the node's: kvfs's mount on ROOT/vault appears
on the node.  Consumers are namespaces whose mounts are the node's slaves
(`unshare --mount --propagation slave`, HostToContainer): one binds ROOT,
the parent, as deploy/README.md tells; the other binds a path inside the
mount, the trap.  The parent's consumer reads through every restart of
kvfs: after SIGTERM, and after SIGKILL, where the start script lazily
unmounts the dead mount first; the other stays ENOTCONN.  The preStop
hook (the script's "stop") unmounts for every consumer and lets kvfs exit
0."""

import os
import signal
import subprocess

import pytest

import util
from conftest import clean_env, option_string, secret_options

START = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                     "deploy", "kubernetes", "kvfs-node-start")
CERT = os.path.join("certificates", "www", "cert.pem")
ENOTCONN = "Transport endpoint is not connected"


class Node:
    """ROOT shared, kvfs containers started with the start script, and
    consumer namespaces; everything undone by close()."""

    def __init__(self, az, tmp_path):
        self.az = az
        self.tmp = tmp_path
        self.root = str(tmp_path / "run-kvfs")
        self.mnt = os.path.join(self.root, "vault")
        os.mkdir(self.root)
        self.procs = []
        subprocess.run(["mount", "--bind", self.root, self.root], check=True)
        # a peer group of its own, not the one of the file system under it
        subprocess.run(["mount", "--make-private", self.root], check=True)
        subprocess.run(["mount", "--make-shared", self.root], check=True)
        self.kvfs = None
        self.env = None
        self.starts = 0

    def start_kvfs(self):
        """The start script in a new container namespace; returns once the
        status file answers on the node (the DaemonSet's startup probe)."""
        self.env = env = clean_env({
            "KVFS_VAULT": self.az.info["vault_url"],
            "KVFS_MOUNTPOINT": self.mnt,
            "KVFS_OPTIONS": option_string(secret_options(self.az)),
            "KVFS_BINARY": util.kvfs_binary(),
            "LC_ALL": "C",
        })
        self.starts += 1
        self.stderr_path = str(self.tmp / ("kvfs%d.stderr" % self.starts))
        with open(self.stderr_path, "w") as err:
            self.kvfs = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "unchanged", "--",
                 "/bin/sh", START], env=env, stdin=subprocess.DEVNULL,
                stdout=err, stderr=err)
        self.procs.append(self.kvfs)
        status = os.path.join(self.mnt, ".kvfs", "status")

        def ready():
            if self.kvfs.poll() is not None:
                raise AssertionError("the start script exited with %d:\n%s" % (
                    self.kvfs.returncode, self.stderr()))
            try:
                with open(status) as f:
                    return f.read()
            except OSError:
                return None
        util.wait_until(ready, 30, "kvfs's status on the node")

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

    def stop_kvfs(self, sig):
        self.kvfs.send_signal(sig)
        code = self.kvfs.wait(timeout=30 * util.SLOW)
        text = self.stderr()
        util.check_sanitizer_output(text)
        return code, text

    def consumer(self, source):
        """A namespace whose mounts are the node's slaves, with source
        bound (recursively, as kubelet does) on a directory of its own;
        returns (process, the bound path)."""
        target = str(self.tmp / ("consumer%d" % len(self.procs)))
        os.mkdir(target)
        p = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "slave", "--", "/bin/sh",
             "-c", 'mount --rbind "$1" "$2" && mount --make-rslave "$2" && '
             'echo ready && exec sleep infinity', "consumer", source, target],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        assert p.stdout.readline() == "ready\n"
        return p, target

    def close(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for path in (self.mnt, self.root):
            subprocess.run(["umount", "-l", path], capture_output=True)


@pytest.fixture
def node(az, tmp_path):
    n = Node(az, tmp_path)
    yield n
    n.close()


def read_in(consumer, path):
    """cat path in the consumer's namespace (and its root: in a chroot, as
    on tests/fresh-machine, entering a mount namespace alone would move
    to the namespace's root): (exit code, stdout, stderr)."""
    r = subprocess.run(["nsenter", "-t", str(consumer.pid), "-m", "-r", "--",
                        "cat", path], capture_output=True, text=True,
                       env=dict(os.environ, LC_ALL="C"), timeout=60)
    return r.returncode, r.stdout, r.stderr


def assert_reads(consumer, path):
    code, out, err = read_in(consumer, path)
    assert code == 0, err
    assert out.startswith("-----BEGIN CERTIFICATE-----")


def test_parent_bind_recovers_across_sigterm_and_sigkill(node):
    node.start_kvfs()
    parent, parent_view = node.consumer(node.root)
    inner, inner_view = node.consumer(os.path.join(node.mnt, "certificates"))
    in_parent = os.path.join(parent_view, "vault", CERT)
    in_inner = os.path.join(inner_view, "www", "cert.pem")
    assert_reads(parent, in_parent)
    assert_reads(inner, in_inner)

    # SIGTERM: kvfs unmounts and exits 0, the unmount reaches the consumer
    code, text = node.stop_kvfs(signal.SIGTERM)
    assert code == 0, text
    assert not util.is_mounted(node.mnt)
    code, _, err = read_in(parent, in_parent)
    assert code != 0 and "No such file or directory" in err, err
    node.start_kvfs()
    assert "a dead kvfs mount" not in node.stderr()
    assert_reads(parent, in_parent)
    code, _, err = read_in(inner, in_inner)
    assert code != 0 and ENOTCONN in err, err

    # SIGKILL: the mount stays, dead, on the node and in the consumer; the
    # start script detaches it before kvfs mounts again
    node.kvfs.kill()
    node.kvfs.wait(timeout=30)
    assert util.is_mounted(node.mnt)
    code, _, err = read_in(parent, in_parent)
    assert code != 0 and ENOTCONN in err, err
    node.start_kvfs()
    assert "kvfs-node-start: %s: a dead kvfs mount, unmounting it" % node.mnt \
        in node.stderr()
    assert_reads(parent, in_parent)
    code, _, err = read_in(inner, in_inner)
    assert code != 0 and ENOTCONN in err, err

    # the DaemonSet's preStop, in the container's namespace: the unmount
    # reaches the consumer, and kvfs, its mount gone, exits 0
    r = subprocess.run(["nsenter", "-t", str(node.kvfs.pid), "-m", "-r", "--",
                        "/bin/sh", START, "stop"], env=node.env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert not util.is_mounted(node.mnt)
    code, _, err = read_in(parent, in_parent)
    assert code != 0 and "No such file or directory" in err, err
    code = node.kvfs.wait(timeout=30 * util.SLOW)
    util.check_sanitizer_output(node.stderr())
    assert code == 0, node.stderr()
