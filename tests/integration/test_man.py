"""The kvfs(8) man page renders without a warning, never hyphenates,
documents every option that kvfs --help lists and every extended attribute
a mount carries, and the version it carries is kvfs's."""

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


def rendered(width=200):
    env = dict(os.environ, MANWIDTH=str(width))
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
    version = run_kvfs(["--version"]).stdout.splitlines()[0].split()[-1]
    with open(PAGE) as f:
        th = next(l for l in f if l.startswith(".TH "))
    assert '"kvfs %s"' % version in th, th


def test_no_word_is_hyphenated():
    """A line may end in a hyphen only where the source has one (read-only):
    never inside a URL, an option or a path that groff chose to split."""
    with open(PAGE) as f:
        source = f.read().replace("\\-", "-").replace("\\%", "")
    for width in (60, 66, 72, 80, 100, 132):
        lines = rendered(width).splitlines()
        for i, line in enumerate(lines[:-1]):
            m = re.search(r"(\S*)[-\u2010]$", line)
            if not m:
                continue
            left = re.search(r"[\w./:=]*$", m.group(1)).group(0)
            right = re.match(r"\s*([\w./:=]*)", lines[i + 1]).group(1)
            assert "%s-%s" % (left, right) in source, \
                "width %d splits '%s|%s' at a hyphen the page does not have" \
                % (width, left, right)


def test_every_xattr_is_documented(shared_mount):
    names = os.listxattr(shared_mount.p("certificates", "www"))
    assert len(names) >= 10, names
    page = rendered()
    for name in names:
        assert re.search(r"^\s+(\S+, )?%s\b" % re.escape(name), page, re.M), \
            "%s is not an entry of kvfs(8)" % name


def test_proxy_variables_are_documented():
    page = rendered()
    for var in ("https_proxy", "no_proxy"):
        assert re.search(r"^\s+.*\b%s\b" % var, page, re.M), var


FAKE_README = os.path.join(HERE, "..", "fakeazure", "README.md")


def test_fake_readme_stays_in_the_repository_and_its_look_runs(fake):
    """tests/fakeazure/README.md names no file outside the repository, and
    its walkthrough runs with what tests/install-deps installs."""
    with open(FAKE_README) as f:
        text = f.read()
    assert "../" not in text
    block = re.search(r"A quick look with curl.*?\n```\n(.*?)```", text,
                      re.S).group(1)
    r = subprocess.run(["bash", "-euo", "pipefail", "-c", block],
                       env=dict(os.environ, D=fake.state_dir),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert '"nextLink"' in r.stdout and "-----BEGIN CERTIFICATE-----" in r.stdout


# Options of mount(8), fstab(5) and systemd that kvfs's examples may use
# beside kvfs's own.
MOUNT_OPTIONS = {"_netdev", "nofail", "noauto", "x-systemd.automount",
                 "defaults", "ro"}
FSTAB_LINE = re.compile(r"^\s*\S+\s+/\S+\s+fuse\.kvfs\s+(\S+)\s+0\s+0\s*$")


def fstab_examples():
    """Every fstab line of the README and of kvfs(8), as a list of options."""
    with open(os.path.join(HERE, "..", "..", "README.md")) as f:
        readme = f.read().splitlines()
    with open(PAGE) as f:
        page = [l.replace("\\-", "-") for l in f.read().splitlines()]
    return [m.group(1).split(",") for m in map(FSTAB_LINE.match, readme + page)
            if m]


def test_every_fstab_example_uses_known_options():
    helptext = run_kvfs(["--help"]).stdout
    known = set(re.findall(r"^\s+-o ([a-z_]+)[=\s]", helptext, re.M))
    examples = fstab_examples()
    assert len(examples) >= 8, examples
    for opts in examples:
        for opt in opts:
            name, _, value = opt.partition("=")
            assert name in known | MOUNT_OPTIONS, (opt, opts)
            if name == "collections":
                assert set(value.split("+")) <= {"certificates", "secrets",
                                                  "keys", "all"}, opts


def test_an_fstab_example_mounts_secrets_with_a_filter():
    both = [o for o in fstab_examples()
            if any(x.startswith("collections=") and "secrets" in x for x in o)
            and any(x.startswith(("include=", "exclude=", "tag=")) for x in o)]
    assert len(both) >= 2, "README and kvfs(8) each show one"
