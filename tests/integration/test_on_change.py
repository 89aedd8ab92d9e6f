"""on_change=: the command runs once a revalidation's changes are visible,
with KVFS_MOUNTPOINT and KVFS_CHANGES in a minimal environment, stdin
/dev/null, no inherited descriptor and its own process group; changes
within on_change_delay= share one run; a command that hangs is killed at
on_change_timeout= and the next change runs it again; failures and
megabytes of output are logged bounded and counted in .kvfs/metrics; a
command that is not absolute, group-writable or owned by another user is
refused at mount.  Runs are counted by the lines the command appends to a
file; no assertion is on elapsed time (waits have generous deadlines).

The module has its own fake, because its tests rotate certificates."""

import base64
import os
import re
import signal
import ssl

import pytest

from client import FakeAzure
from conftest import option_string, run_kvfs, secret_options
import util
from util import wait_until


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    with FakeAzure(str(tmp_path_factory.mktemp("fake-onchange")), bulk=30) as f:
        yield f
        assert "Traceback" not in f.output(), f.output()


def command(tmp_path, body, name="cmd", mode=0o755):
    """An executable shell script in its own directory under tmp_path."""
    d = tmp_path / ("bin-" + name)
    d.mkdir(exist_ok=True)
    path = d / name
    path.write_text("#!/bin/sh\n" + body)
    os.chmod(path, mode)
    return str(path)


def lines(path):
    try:
        with open(path) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def runs_metric(m):
    with open(m.p(".kvfs", "metrics")) as f:
        text = f.read()
    return {r: int(v) for r, v in re.findall(
        r'^kvfs_on_change_runs_total\{result="(\w+)"\} (\d+)$', text, re.M)}


def rotate_and_hup(fake, m, *names):
    for n in names:
        fake.rotate(n)
    m.proc.send_signal(signal.SIGHUP)


def pem_of_latest(fake, name):
    cert = fake.certificate(name)
    ver = next(v for v in cert["versions"] if v["version"] == cert["latest"])
    return ssl.DER_cert_to_PEM_cert(base64.b64decode(ver["cer"]))


def other_names(m, n):
    """n certificates the mount shows, not www, api or mail."""
    names = sorted(c for c in os.listdir(m.p("certificates"))
                   if not c.startswith(".") and c not in ("www", "api", "mail"))
    assert len(names) >= n
    return names[:n]


def test_rotation_runs_once_and_sees_the_new_bytes(mount, az, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cmd = command(tmp_path, """
n=$(cat %(o)s/runs 2>/dev/null | wc -l)
cat "$KVFS_MOUNTPOINT/certificates/www/cert.pem" > %(o)s/seen.$n
env > %(o)s/env.$n
ls /proc/self/fd > %(o)s/fds.$n
readlink /proc/self/fd/0 > %(o)s/stdin.$n
echo $$ $(cut -d' ' -f5 /proc/$$/stat) > %(o)s/pgid.$n
grep -E '^Sig(Blk|Ign):' /proc/self/status > %(o)s/sig.$n
echo "$KVFS_MOUNTPOINT|$KVFS_CHANGES" >> %(o)s/runs
""" % {"o": out})
    m = mount(on_change=cmd)
    before = open(m.p("certificates", "www", "cert.pem")).read()
    runs = out / "runs"

    rotate_and_hup(az, m, "www")
    wait_until(lambda: lines(runs), 30, "a run after the rotation")
    assert lines(runs) == ["%s|certificates/www" % m.path]
    # the command read the new version through the mount
    seen = (out / "seen.0").read_text()
    assert seen == pem_of_latest(az, "www") != before

    env = dict(l.split("=", 1) for l in lines(out / "env.0"))
    assert env["PATH"] == "/usr/sbin:/usr/bin:/sbin:/bin"
    assert env["KVFS_MOUNTPOINT"] == m.path
    assert env["KVFS_CHANGES"] == "certificates/www"
    # nothing of the daemon's environment; the shell adds PWD and the like
    assert set(env) <= {"PATH", "KVFS_MOUNTPOINT", "KVFS_CHANGES", "PWD",
                        "OLDPWD", "SHLVL", "_"}, env
    # 0, 1 (the file), 2 and ls's own directory: nothing inherited
    assert sorted(lines(out / "fds.0"), key=int) == ["0", "1", "2", "3"]
    assert lines(out / "stdin.0") == ["/dev/null"]
    pid, pgid = lines(out / "pgid.0")[0].split()
    assert pid == pgid, "the command leads its own process group"
    # no signal blocked or ignored (the daemon's threads block them all);
    # the shell's own child reads it: the shell blocks all while it forks.
    # glibc's posix_spawn leaves its two internal signals (32, 33) ignored
    sig = dict(l.split(":\t") for l in lines(out / "sig.0"))
    assert int(sig["SigBlk"], 16) == 0, sig
    assert int(sig["SigIgn"], 16) & 0x7fffffff == 0, sig

    # another change: the second run names only it, so there was no run
    # in between (runs never overlap, and come in order)
    rotate_and_hup(az, m, "api")
    wait_until(lambda: len(lines(runs)) >= 2, 30, "a second run")
    assert lines(runs) == ["%s|certificates/www" % m.path,
                           "%s|certificates/api" % m.path]
    wait_until(lambda: runs_metric(m).get("ok") == 2, 10, "2 runs counted")
    assert runs_metric(m) == {"ok": 2, "failed": 0, "timeout": 0, "error": 0}
    assert "exited with status 0" in m.stderr()


def test_burst_of_twenty_shares_one_run(mount, az, tmp_path):
    runs = tmp_path / "runs"
    cmd = command(tmp_path, 'echo "$KVFS_CHANGES" >> %s\n' % runs)
    m = mount(on_change=cmd, on_change_delay=3)
    names = other_names(m, 20)

    # one revalidation changes 20 objects
    rotate_and_hup(az, m, *names)
    wait_until(lambda: lines(runs), 30, "a run after the burst")
    got = lines(runs)[0].split()
    assert got == sorted("certificates/" + n for n in names)
    # a barrier: one more change makes a run of its own, after any other
    rotate_and_hup(az, m, "mail")
    wait_until(lambda: "certificates/mail" in lines(runs), 30, "a run for mail")
    assert lines(runs) == [" ".join(got), "certificates/mail"]


def test_hanging_command_is_killed_and_runs_again(mount, az, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    cmd = command(tmp_path, """
sleep 1000 &
echo $! >> %(o)s/runs
wait
""" % {"o": out})
    m = mount(on_change=cmd, on_change_timeout=1, on_change_delay=1)
    runs = out / "runs"

    rotate_and_hup(az, m, "www")
    wait_until(lambda: runs_metric(m).get("timeout") == 1, 30,
               "a timeout counted")
    sleep = int(lines(runs)[0])

    def sleep_gone():
        try:
            with open("/proc/%d/stat" % sleep) as f:
                return f.read().rsplit(")", 1)[1].split()[0] == "Z"
        except FileNotFoundError:
            return True
    # the whole group was killed, the command's own child too
    wait_until(sleep_gone, 10, "the command's child killed")
    rotate_and_hup(az, m, "api")
    wait_until(lambda: runs_metric(m).get("timeout") == 2, 30,
               "the next change ran it again")
    assert len(lines(runs)) == 2
    assert runs_metric(m)["ok"] == 0
    assert "killed after on_change_timeout=1 seconds" in m.stderr()


def test_failing_command_is_logged_and_counted(mount, az, tmp_path):
    cmd = command(tmp_path, 'echo "reload \033[31mfailed"\nexit 1\n')
    m = mount(on_change=cmd, on_change_delay=1)
    rotate_and_hup(az, m, "www")
    wait_until(lambda: runs_metric(m).get("failed") == 1, 30,
               "a failed run counted")
    wait_until(lambda: "reload" in m.stderr(), 10, "the output logged")
    err = m.stderr()
    assert "exited with status 1" in err
    # the output, its control characters escaped
    assert "on_change output: reload \\x1b[31mfailed\\n" in err
    assert "\033" not in err
    assert runs_metric(m) == {"ok": 0, "failed": 1, "timeout": 0, "error": 0}


def test_megabytes_of_output_are_bounded(mount, az, tmp_path):
    done = tmp_path / "done"
    cmd = command(tmp_path, """
head -c 5000000 /dev/zero | tr '\\0' y
echo done > %s
""" % done)
    m = mount(on_change=cmd, on_change_delay=1)
    rotate_and_hup(az, m, "www")
    wait_until(lambda: runs_metric(m).get("ok") == 1, 60, "the run completed")
    assert done.exists()
    wait_until(lambda: "not logged" in m.stderr(), 10, "the dropped count")
    err = m.stderr()
    assert re.search(r"on_change output: \d+ more bytes not logged", err)
    n = int(re.search(r"on_change output: (\d+) more bytes", err).group(1))
    assert n == 5000000 - 1024
    assert err.count("y") < 2000
    assert len(err) < 32768


@pytest.mark.parametrize("case", ["relative", "group_writable", "other_owner",
                                  "not_executable", "symlink"])
def test_unsafe_command_is_refused_at_mount(fake, tmp_path, case):
    cmd = command(tmp_path, "exit 0\n")
    want = None
    if case == "relative":
        value = os.path.relpath(cmd)
        want = "expected an absolute path"
    elif case == "group_writable":
        os.chmod(cmd, 0o775)
        value, want = cmd, "must not be writable by group or others"
    elif case == "other_owner":
        os.chown(cmd, 65534, 65534)
        value, want = cmd, "is owned by uid 65534"
    elif case == "not_executable":
        os.chmod(cmd, 0o644)
        value, want = cmd, "is not executable"
    else:
        value = str(tmp_path / "link")
        os.symlink(cmd, value)
        want = "is a symbolic link"
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    opts = secret_options(fake)
    opts["on_change"] = value
    r = run_kvfs(["-f", "-o", option_string(opts), fake.info["vault_url"],
                  str(mnt)])
    assert r.returncode == (2 if case == "relative" else 1), r.stderr
    assert not util.is_mounted(str(mnt))
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, r.stderr
    assert err[0].startswith("kvfs: "), err
    assert want in err[0], err
    assert "on_change" in err[0], err


def test_a_change_told_again_makes_no_second_run(mount, az, tmp_path):
    # A file open through the page cache while its object rotates keeps
    # the change until it is closed; the kernel is then told once more,
    # which is no new change: the runs name each object once.
    runs = tmp_path / "runs"
    cmd = command(tmp_path, 'echo "$KVFS_CHANGES" >> %s\n' % runs)
    m = mount(on_change=cmd)
    a, b, c = other_names(m, 3)
    with open(m.p("certificates", a, "cert.pem")) as held:
        held.read()
        rotate_and_hup(az, m, a)
        wait_until(lambda: lines(runs), 30, "a run for %s" % a)
    rotate_and_hup(az, m, b)
    wait_until(lambda: len(lines(runs)) >= 2, 30, "a run for %s" % b)
    rotate_and_hup(az, m, c)
    wait_until(lambda: len(lines(runs)) >= 3, 30, "a run for %s" % c)
    assert lines(runs) == ["certificates/" + n for n in (a, b, c)]
