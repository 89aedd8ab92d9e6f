"""deploy/ checked without a cluster, a container engine or a VM: the
Kubernetes manifests and the image recipe by check.mjs (the API's schemas
and kvfs's rules), the cloud-init example by Debian's `cloud-init schema`
and by what kvfs@.service needs of it.  Each check is also fed a broken
copy, and must fail on it with the message that names the break.

Needs tests/install-deps --test (tests/node/bin/node, tests/deploy's
node_modules, cloud-init unpacked in tests/deploy/cloud-init); without them
the tests fail, naming the command."""

import os
import re
import shutil
import subprocess

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
DEPLOY = os.path.join(TOP, "deploy")
KUBE = os.path.join(DEPLOY, "kubernetes")
NODE = os.path.join(TOP, "tests", "node", "bin", "node")
CLOUD_INIT = os.path.join(HERE, "cloud-init")
CLOUD_CONFIG = os.path.join(DEPLOY, "cloud-init", "kvfs.yaml")


def need(path):
    assert os.path.exists(path), \
        "%s is missing: run tests/install-deps --test" % path


def check(manifests, containerfile=None):
    need(NODE)
    need(os.path.join(HERE, "node_modules"))
    args = [NODE, os.path.join(HERE, "check.mjs"), "--context", TOP]
    if containerfile:
        args += ["--containerfile", containerfile]
    return subprocess.run(args + [manifests], capture_output=True, text=True,
                          timeout=120)


def cloud_init_schema(path):
    need(os.path.join(CLOUD_INIT, "usr", "bin", "cloud-init"))
    env = dict(os.environ, PYTHONPATH=os.path.join(
        CLOUD_INIT, "usr", "lib", "python3", "dist-packages"))
    return subprocess.run(["/usr/bin/python3",
                           os.path.join(CLOUD_INIT, "usr", "bin", "cloud-init"),
                           "schema", "--config-file", path],
                          env=env, capture_output=True, text=True, timeout=120)


def test_manifests_and_image_recipe_pass():
    r = check(KUBE, os.path.join(DEPLOY, "Containerfile"))
    assert r.returncode == 0 and r.stdout == "", r.stdout + r.stderr


def test_kubectl_apply_order():
    """kubectl apply -f deploy/kubernetes/ applies the files in name
    order, each kind after what it needs; the example is in a directory
    of its own, not applied with them."""
    files = sorted(f for f in os.listdir(KUBE) if f.endswith(".yaml"))
    kinds = []
    for f in files:
        with open(os.path.join(KUBE, f)) as fh:
            kinds += [d["kind"] for d in yaml.safe_load_all(fh) if d]
    assert kinds == ["Namespace", "ServiceAccount", "ConfigMap", "DaemonSet"]
    assert os.listdir(os.path.join(KUBE, "example")) == ["consumer-pod.yaml"]


# (file under deploy/kubernetes, text in it, replacement, the problem
# check.mjs must print)
BREAKS = [
    ("30-daemonset.yaml", "privileged: true", 'privileged: "yes"',
     "schema: data/spec/template/spec/containers/0/securityContext/"
     "privileged must be boolean"),
    ("30-daemonset.yaml", "privileged: true", "privileged: false",
     "container kvfs mounts kvfs Bidirectional but is not privileged"),
    ("00-namespace.yaml", "enforce: privileged", "enforce: baseline",
     'which does not enforce Pod Security "privileged"'),
    ("30-daemonset.yaml", "mountPropagation: Bidirectional",
     "mountPropagation: HostToContainer",
     "no kvfs pod: no workload mounts a hostPath Bidirectional"),
    ("30-daemonset.yaml", "          image: registry.example.com/kvfs:0.1.0\n", "",
     "container kvfs has no image"),
    ("30-daemonset.yaml", "livenessProbe:", "readinessProbe:",
     "container kvfs has no livenessProbe (exec)"),
    ("30-daemonset.yaml", "startupProbe:", "readinessProbe:",
     "container kvfs has no startupProbe (exec)"),
    ("20-configmap.yaml", "KVFS_VAULT: myvault", "KVFS_VAULT: othervault",
     "its startupProbe does not read /run/kvfs/othervault/.kvfs/status"),
    ("20-configmap.yaml", "KVFS_VAULT: myvault",
     "KVFS_VAULT: myvault\n  KVFS_MOUNTPOINT: /mnt/myvault",
     "container kvfs: kvfs mounts /mnt/myvault, not below its Bidirectional "
     "/run/kvfs"),
    ("30-daemonset.yaml", "preStop:", "postStart:",
     "container kvfs has no preStop hook to unmount"),
    ("10-serviceaccount.yaml", "azure.workload.identity/client-id:",
     "azure.workload.identity/tenant-id:",
     "no ServiceAccount kvfs/kvfs here carries "
     "azure.workload.identity/client-id"),
    ("example/consumer-pod.yaml", "path: /run/kvfs\n",
     "path: /run/kvfs/myvault\n",
     "volume kvfs is the hostPath /run/kvfs/myvault, inside the kvfs mounts "
     "under /run/kvfs"),
    ("example/consumer-pod.yaml", "readOnly: true", "readOnly: false",
     "container reader mounts /run/kvfs (kvfs) without readOnly: true"),
    ("example/consumer-pod.yaml", "          mountPropagation: HostToContainer\n",
     "", "container reader mounts /run/kvfs (kvfs) without "
     "mountPropagation: HostToContainer"),
    ("example/consumer-pod.yaml", "      image: debian:12\n", "",
     "container reader has no image"),
]


def broken_copy(tmp_path, file, old, new):
    d = tmp_path / "kubernetes"
    shutil.copytree(KUBE, d, ignore=shutil.ignore_patterns("kvfs-node-start"))
    p = d / file
    text = p.read_text()
    assert old in text, "%s no longer holds %r" % (file, old)
    p.write_text(text.replace(old, new, 1))
    return str(d)


@pytest.mark.parametrize("file,old,new,message", BREAKS,
                         ids=["%s:%s" % (b[0], b[3][:40]) for b in BREAKS])
def test_checker_fails_on_a_broken_manifest(tmp_path, file, old, new, message):
    r = check(broken_copy(tmp_path, file, old, new))
    assert r.returncode == 1, r.stdout + r.stderr
    assert message in r.stdout, r.stdout + r.stderr


CONTAINERFILE_BREAKS = [
    ("FROM debian:12", "FROM ubuntu:24.04",
     "the image is not built FROM debian:12 (or bookworm)"),
    ("COPY build-deb/kvfs_*.deb /tmp/", "COPY build-deb/kvfs.tar /tmp/",
     "no COPY of the project's .deb (build-deb/kvfs_*.deb)"),
    ("ca-certificates /tmp/kvfs_*.deb", "ca-certificates fuse3",
     "no RUN apt-get install of the kvfs_*.deb"),
    ('ENTRYPOINT ["/usr/local/bin/kvfs-node-start"]',
     'ENTRYPOINT ["/usr/bin/kvfs"]',
     "the ENTRYPOINT (exec form) is not the start script copied to "
     "/usr/local/bin/kvfs-node-start"),
]


@pytest.mark.parametrize("old,new,message", CONTAINERFILE_BREAKS,
                         ids=[b[2][:40] for b in CONTAINERFILE_BREAKS])
def test_checker_fails_on_a_broken_containerfile(tmp_path, old, new, message):
    with open(os.path.join(DEPLOY, "Containerfile")) as f:
        text = f.read()
    assert old in text
    p = tmp_path / "Containerfile"
    p.write_text(text.replace(old, new, 1))
    r = check(KUBE, str(p))
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.strip() == "%s: %s" % (p, message), r.stdout + r.stderr


def test_cloud_config_is_valid():
    r = cloud_init_schema(CLOUD_CONFIG)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "Valid cloud-config: %s" % CLOUD_CONFIG


def test_readme_mounts_snippet_is_valid(tmp_path):
    """deploy/README.md's fstab route through cloud-init's mounts:."""
    with open(os.path.join(DEPLOY, "README.md")) as f:
        blocks = re.findall(r"^```\n(mounts:\n.*?)^```$", f.read(), re.M | re.S)
    assert len(blocks) == 1
    assert "noauto,x-systemd.automount" in blocks[0]
    p = tmp_path / "mounts.yaml"
    p.write_text("#cloud-config\n" + blocks[0])
    r = cloud_init_schema(str(p))
    assert r.returncode == 0, r.stdout + r.stderr


def test_cloud_init_schema_fails_on_a_broken_config(tmp_path):
    with open(CLOUD_CONFIG) as f:
        text = f.read()
    assert 'permissions: "0600"' in text
    p = tmp_path / "kvfs.yaml"
    p.write_text(text.replace('permissions: "0600"', "permissions: 600", 1))
    r = cloud_init_schema(str(p))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "write_files.0.permissions: 600 is not of type 'string'" in \
        r.stdout + r.stderr


def test_cloud_config_gives_kvfs_at_service_what_it_needs():
    """The instance enabled is the escaped mount point of a configuration
    written with the unit's two variables, root's only, as is the
    credential its drop-in loads; the .deb is installed before the unit is
    enabled, and no fstab line is written (cloud-init's mounts: runs before
    any package is installed)."""
    with open(CLOUD_CONFIG) as f:
        text = f.read()
    assert text.startswith("#cloud-config\n")
    cfg = yaml.safe_load(text)
    assert "mounts" not in cfg
    files = {w["path"]: w for w in cfg["write_files"]}
    enable = [c for c in cfg["runcmd"] if c[:3] == ["systemctl", "enable", "--now"]]
    assert len(enable) == 1
    m = re.fullmatch(r"kvfs@(.+)\.service", enable[0][3])
    assert m, enable
    instance = m.group(1)
    # systemd-escape --unescape --path
    mountpoint = "/" + re.sub(r"\\x([0-9a-f]{2})",
                              lambda x: chr(int(x.group(1), 16)),
                              instance.replace("-", "/"))
    assert mountpoint == "/run/kv"
    conf = files["/etc/kvfs/%s.conf" % instance]
    assert conf["permissions"] == "0600"
    keys = [line.split("=", 1)[0] for line in conf["content"].splitlines()]
    assert keys == ["KVFS_VAULT", "KVFS_OPTIONS"]
    dropin = files["/etc/systemd/system/kvfs@%s.service.d/credential.conf"
                   % instance]["content"]
    m = re.search(r"^LoadCredential=kvfs-client-secret:(\S+)$", dropin, re.M)
    assert m, dropin
    assert files[m.group(1)]["permissions"] == "0600"
    install = [i for i, c in enumerate(cfg["runcmd"])
               if c[:3] == ["apt-get", "install", "-y"]]
    assert len(install) == 1 and cfg["runcmd"][install[0]][3].endswith(".deb")
    assert install[0] < cfg["runcmd"].index(enable[0])
