"""The kvfs(8) man page renders without a warning and documents every
option that kvfs --help lists, and the version it carries is kvfs's."""

import os
import re
import subprocess

from conftest import run_kvfs

HERE = os.path.dirname(os.path.abspath(__file__))
PAGE = os.path.join(HERE, "..", "..", "doc", "kvfs.8")


def test_groff_has_no_warnings():
    r = subprocess.run(["groff", "-ww", "-man", "-z", PAGE],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def test_man_renders_without_warnings():
    env = dict(os.environ, MANWIDTH="80")
    r = subprocess.run(["man", "--warnings", "-l", PAGE], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    for section in ("NAME", "SYNOPSIS", "OPTIONS", "ENVIRONMENT", "FILES",
                    "EXIT STATUS", "EXAMPLES"):
        assert re.search(r"^%s$" % section, r.stdout, re.M), section


def rendered():
    env = dict(os.environ, MANWIDTH="200")
    return subprocess.run(["man", "-l", PAGE], env=env, check=True,
                          capture_output=True, text=True).stdout


def test_every_help_option_is_documented():
    helptext = run_kvfs(["--help"]).stdout
    names = re.findall(r"^\s+-o ([a-z_]+)[=\s]", helptext, re.M)
    assert len(names) >= 20, helptext
    page = rendered()
    for name in names:
        assert re.search(r"^\s+%s\b" % name, page, re.M), \
            "option %s is not an entry of kvfs(8)" % name
    for flag in ("-f", "-d", "--help", "--version"):
        assert flag in page, flag
    for var in re.findall(r"\b(AZURE_[A-Z_]+)", helptext):
        assert var in page, var
    for cred in ("kvfs-client-secret", "kvfs-client-cert",
                 "kvfs-client-cert-password", "CREDENTIALS_DIRECTORY"):
        assert cred in page, cred


def test_page_carries_kvfs_version():
    version = run_kvfs(["--version"]).stdout.split()[-1]
    with open(PAGE) as f:
        th = next(l for l in f if l.startswith(".TH "))
    assert '"kvfs %s"' % version in th, th
