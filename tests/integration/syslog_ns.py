"""Run by test_mount.py under `unshare --mount --propagation private`:
give this mount namespace its own /dev with a /dev/log socket we listen
on, mount kvfs through mount(8), read a file, unmount, and print what
arrived on /dev/log and what mount printed, as JSON.  The host's /dev and
/dev/log are never touched.

usage: syslog_ns.py WORKDIR MOUNTPOINT VAULT OPTIONS"""

import json
import os
import socket
import subprocess
import sys
import time

work, mnt, vault, options = sys.argv[1:5]


def run(*args):
    subprocess.run(args, check=True)


olddev = os.path.join(work, "olddev")
os.makedirs(olddev)
run("mount", "--bind", "/dev", olddev)
run("mount", "-t", "tmpfs", "-o", "mode=0755", "tmpfs", "/dev")
for name in ("fuse", "null", "zero", "random", "urandom"):
    open("/dev/" + name, "w").close()
    run("mount", "--bind", os.path.join(olddev, name), "/dev/" + name)

log = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
log.bind("/dev/log")
log.settimeout(0.2)

r = subprocess.run(["mount", "-t", "fuse.kvfs", vault, mnt, "-o", options],
                   capture_output=True, text=True, timeout=60)
lines, read_ok = [], False
if r.returncode == 0:
    with open(os.path.join(mnt, "certificates", "www", "cert.pem")) as f:
        read_ok = f.read().startswith("-----BEGIN CERTIFICATE-----")
    subprocess.run(["umount", mnt], check=True)
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        lines.append(log.recv(4096).decode(errors="replace"))
    except socket.timeout:
        if any("unmounting" in l for l in lines) or r.returncode != 0:
            break
print(json.dumps({"mount_rc": r.returncode, "mount_out": r.stdout + r.stderr,
                  "read_ok": read_ok, "syslog": lines}))
