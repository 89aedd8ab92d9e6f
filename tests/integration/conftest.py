"""pytest fixtures shared by the integration tests: one fake Azure per test
session, and a factory that mounts kvfs on a fresh directory against it."""

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "fakeazure"))

from client import FakeAzure  # noqa: E402
import util  # noqa: E402

# The installed package's tests run only where the package was installed on
# purpose (meson test --setup installed --suite package); elsewhere they are
# not collected at all rather than skipped.
collect_ignore = [] if os.environ.get("KVFS_INSTALLED") == "1" else [
    "test_package.py"]


@pytest.fixture(scope="session")
def fake(tmp_path_factory):
    with FakeAzure(str(tmp_path_factory.mktemp("fake")), bulk=60) as f:
        yield f


@pytest.fixture
def az(fake):
    """The session's fake, with a clean request log and no faults."""
    fake.clear_faults()
    fake.reset_log()
    yield fake
    fake.clear_faults()


# The longest refresh= there is: a year.
NO_REFRESH = 31536000


def secret_options(fake, app="secret"):
    info = fake.info
    return {
        "auth": "secret",
        "tenant": info["tenant"],
        "client_id": info["apps"][app]["client_id"],
        "secret_file": info["apps"][app]["secret_file"],
        "authority": info["authority"],
        "ca_file": info["ca_file"],
        # the fake's vault is https://127.0.0.1:PORT, not *.vault.azure.net:
        # kvfs sends a vault.azure.net token there only when told to
        "resource": info["resource"],
        # no background revalidation in the middle of a test that counts
        # requests (the first one comes anywhere in the first period);
        # the tests of revalidation set refresh= or send SIGHUP
        "refresh": NO_REFRESH,
    }


def option_string(opts):
    parts = []
    for k, v in opts.items():
        if v is None:
            continue
        parts.append(k if v is True else "%s=%s" % (k, v))
    return ",".join(parts)


def clean_env(extra=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env.update(extra or {})
    return env


def run_kvfs(args, env=None, timeout=60):
    """Run kvfs to completion (for start-up failures, --help, ...), in the
    foreground: under KVFS_WRAPPER a daemon would keep stderr open."""
    r = subprocess.run(util.kvfs_command() + args, env=clean_env(env),
                       stdin=subprocess.DEVNULL, capture_output=True,
                       text=True, timeout=timeout)
    util.check_sanitizer_output(r.stderr)
    return r


def start_mount(fake, path, errpath, vault=None, env=None, app="secret",
                binary=None, **overrides):
    """kvfs -f on path with the app's credentials, overridden or dropped
    (value None) by overrides, its output in errpath; returns its
    util.Mount at once (wait_mounted() waits for the mount).  binary= runs
    another build of the daemon (util.testhooks_binary())."""
    opts = secret_options(fake, app)
    opts.update(overrides)
    args = util.kvfs_command(binary) + ["-f", "-o", option_string(opts),
            vault or fake.info["vault_url"], str(path)]
    with open(errpath, "w") as err:
        proc = subprocess.Popen(args, env=clean_env(env),
                                stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err)
    return util.Mount(proc, str(path), errpath)


@pytest.fixture
def mount(fake, tmp_path):
    """mount(**options) -> util.Mount; start_mount() on a fresh
    directory, unmounted at the end of the test."""
    mounts = []

    def _mount(**kw):
        mnt = tmp_path / ("mnt%d" % len(mounts))
        mnt.mkdir()
        errpath = str(tmp_path / ("kvfs%d.stderr" % len(mounts)))
        m = start_mount(fake, mnt, errpath, **kw)
        mounts.append(m)
        return m.wait_mounted()

    yield _mount
    errors = []
    for m in mounts:
        try:
            m.unmount()
        except AssertionError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n".join(errors))


@pytest.fixture(scope="module")
def shared_mount(fake, tmp_path_factory):
    """One read-only mount shared by a module's tests that only look."""
    mnt = tmp_path_factory.mktemp("shared")
    m = start_mount(fake, mnt, str(mnt) + ".stderr").wait_mounted()
    yield m
    m.unmount()
