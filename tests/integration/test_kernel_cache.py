"""-o kernel_cache: open answers ENOSYS once and the kernel sends no more
OPEN or RELEASE; reads come without a handle and are served from the
current files, a change reaches new reads through the kernel's caches
being dropped (rotation + SIGHUP, no remount), a closed object is refused
at read even to root, the vault sees the requests the default mode makes,
and .kvfs/ files are rendered anew after each revalidation.  Requests are
counted from the fake's log and from libfuse's debug log, never timed.

The module has its own fake, because its tests rotate and disable."""

import errno
import json
import os
import re
import signal
import subprocess

import pytest

from client import FakeAzure
from conftest import option_string, run_kvfs, secret_options
from util import vault_log, wait_until


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeAzure(str(tmp_path_factory.mktemp("fake-kcache")), bulk=30) as f:
        yield f
        assert "Traceback" not in f.output(), f.output()


def read(m, *parts):
    """Read in a process of its own, as a consumer would."""
    return subprocess.run(["cat", m.p(*parts)], check=True,
                          capture_output=True, timeout=30).stdout


def read_errno(m, *parts):
    try:
        with open(m.p(*parts), "rb") as f:
            f.read()
        return 0
    except OSError as e:
        return e.errno


def opcodes(m, op):
    """How many requests of opcode op libfuse's debug log shows."""
    return len(re.findall(r"opcode: %s\b" % op, m.stderr()))


def status(m):
    with open(m.p(".kvfs", "status")) as f:
        return json.load(f)


def metric(m, line_start):
    with open(m.p(".kvfs", "metrics")) as f:
        for line in f:
            if line.startswith(line_start):
                return int(line.split()[-1])
    raise AssertionError("no metric " + line_start)


def workload(m):
    """What a consumer does: list, stat, read certificates and keys, more
    than once each, and a secret."""
    names = ["www", "mail", "bulk-000", "bulk-001"]
    subprocess.run(["ls", "-l", m.p("certificates")], check=True,
                   capture_output=True, timeout=30)
    out = {}
    for _ in range(3):
        for n in names:
            out[n] = (read(m, "certificates", n, "cert.pem"),
                      read(m, "certificates", n, "privkey.pem"),
                      read(m, "certificates", n, "fullchain.pem"))
    return out


def test_reads_without_open_round_trips(mount, az):
    m = mount(kernel_cache=True, debug=True)
    files = workload(m)
    for cert, key, chain in files.values():
        assert cert.startswith(b"-----BEGIN CERTIFICATE-----")
        assert b"PRIVATE KEY-----" in key
        assert chain.startswith(cert)
    # 36 opens of files; the first answered ENOSYS, none after it
    assert opcodes(m, "OPEN") == 1, m.stderr()[-3000:]
    assert opcodes(m, "RELEASE") == 0
    assert opcodes(m, "READ") >= 1


def test_same_vault_requests_as_default_mode(mount, az):
    counts = {}
    contents = {}
    for mode in ("default", "kernel_cache"):
        az.reset_log()
        m = mount(kernel_cache=True) if mode == "kernel_cache" else mount()
        contents[mode] = workload(m)
        counts[mode] = sorted((e["method"], e["path"].lower())
                              for e in vault_log(az))
        m.unmount()
    assert counts["kernel_cache"] == counts["default"]
    assert len(counts["default"]) > 0
    assert contents["kernel_cache"] == contents["default"]


def test_secret_read_without_open(mount, az):
    name = "kcache-secret"
    az.create_secret(name, value="s3cr3t-value-of-some-length")
    try:
        m = mount(kernel_cache=True, collections="secrets")
        # ls -l first: the size the kernel keeps must be the value's
        subprocess.run(["ls", "-l", m.p("secrets")], check=True,
                       capture_output=True, timeout=30)
        assert read(m, "secrets", name) == b"s3cr3t-value-of-some-length"
        assert os.stat(m.p("secrets", name)).st_size == len(
            b"s3cr3t-value-of-some-length")
    finally:
        az.delete(name, kind="secrets")


def test_rotation_and_sighup_reach_a_new_read(mount, az):
    m = mount(kernel_cache=True)
    before = read(m, "certificates", "www", "cert.pem")
    assert read(m, "certificates", "www", "cert.pem") == before
    # the kernel holds the control files' pages from here on
    listed = 'kvfs_requests_total{endpoint="list",code="200"}'
    pages = metric(m, listed)
    assert pages >= 1
    refreshed = status(m)["last_refresh"]
    az.rotate("www")
    m.proc.send_signal(signal.SIGHUP)
    after = wait_until(
        lambda: (lambda b: b if b != before else None)(
            read(m, "certificates", "www", "cert.pem")),
        15, "the rotated cert.pem read")
    assert after.startswith(b"-----BEGIN CERTIFICATE-----")
    assert os.stat(m.p("certificates", "www", "cert.pem")).st_size == len(after)
    # the control files are read anew, not from the kernel's pages: the
    # listing the SIGHUP made counts in metrics
    wait_until(lambda: metric(m, listed) > pages, 15, "metrics after the SIGHUP")
    assert status(m)["last_refresh"] >= refreshed


def test_closed_objects_refused_at_read_even_as_root(mount, az):
    assert os.geteuid() == 0
    m = mount(kernel_cache=True)
    for name in ("disabled-cert", "expired-cert", "future-cert"):
        assert read_errno(m, "certificates", name, "cert.pem") == errno.EACCES
    # an object disabled while the kernel holds its pages: refused once a
    # revalidation saw it, without a remount
    name = "mail"
    assert read(m, "certificates", name, "cert.pem")
    az.disable(name)
    try:
        m.proc.send_signal(signal.SIGHUP)
        wait_until(lambda: read_errno(m, "certificates", name, "cert.pem")
                   == errno.EACCES, 15, "the disabled certificate refused")
        assert read_errno(m, "certificates", name, "privkey.pem") == errno.EACCES
    finally:
        az.enable(name)


@pytest.mark.parametrize("opt", ["key_readers", "rules_file"])
def test_rules_refused_with_kernel_cache(az, tmp_path, opt):
    """Rules and the audit are kept at open, which the kernel no longer
    sends: the mount is refused with one line, before any request."""
    rules = tmp_path / "rules"
    rules.write_text("* readers=uid:0\n")
    rules.chmod(0o600)
    (tmp_path / "mnt").mkdir()
    opts = secret_options(az)
    opts.update(kernel_cache=True,
                **{opt: "uid:0" if opt == "key_readers" else str(rules)})
    az.reset_log()
    r = run_kvfs(["-f", "-o", option_string(opts), az.info["vault_url"],
                  str(tmp_path / "mnt")])
    assert r.returncode == 2, r.stderr
    assert "kernel_cache cannot be used with %s=" % opt in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not os.path.ismount(str(tmp_path / "mnt"))
    assert vault_log(az) == []


def test_events_need_an_open(mount, az):
    """.kvfs/events is a queue per open: without opens, a read says so."""
    m = mount(kernel_cache=True)
    read(m, "certificates", "www", "cert.pem")  # the open that turns them off
    assert read_errno(m, ".kvfs", "events") == errno.EOPNOTSUPP
    assert status(m)["vault"]
