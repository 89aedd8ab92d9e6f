"""The tree: certificates/ lists the vault, cert.pem and cert.der
hold the latest leaf, modes and times follow the certificate's attributes,
and nothing can be written."""

import base64
import errno
import os
import re
import signal
import ssl
import stat
import time

import pytest

import util

CLOSED = ("disabled-cert", "expired-cert", "future-cert")


def state_by_name(fake):
    return {c["name"]: c for c in fake.state()["certificates"]}


def latest(cert):
    return next(v for v in cert["versions"] if v["version"] == cert["latest"])


def test_listing_equals_vault_across_pages(shared_mount, fake):
    names = sorted(os.listdir(shared_mount.p("certificates")), key=str.lower)
    want = sorted(state_by_name(fake), key=str.lower)
    assert len(want) > 50  # spans several pages of 25
    assert names == want


def test_listing_with_empty_last_page(mount, az):
    az.settings(empty_last_page=True)
    try:
        m = mount()
        names = set(os.listdir(m.p("certificates")))
    finally:
        az.settings(empty_last_page=False)
    assert names == set(state_by_name(az))


def test_directory_read_in_replies_lists_its_open_snapshot_once(mount, az):
    """A collection's directory is read a reply at a time: a pass that a
    revalidation interrupts lists each object of the listing it began with
    exactly once (the first name is gone meanwhile, which moves every
    later one in the new listing), and the next pass lists the new
    one."""
    gone, new = "aaa-offsets-gone", "zzz-offsets-new"
    az.create(gone, kty="EC", crv="P-256")
    try:
        m = mount()
        before = sorted(state_by_name(az), key=str.lower)
        fd = os.open(m.p("certificates"), os.O_RDONLY | os.O_DIRECTORY)
        try:
            first = util.getdents(fd)
            az.delete(gone)
            az.create(new, kty="EC", crv="P-256")
            m.proc.send_signal(signal.SIGHUP)
            util.wait_until(lambda: new in os.listdir(m.p("certificates")), 15,
                            "the revalidated listing")
            rest = []
            while True:
                names = util.getdents(fd)
                if not names:
                    break
                rest += names
        finally:
            os.close(fd)
        assert 0 < len(first) < len(before) // 2  # several replies
        assert sorted(first + rest, key=str.lower) == before
        after = sorted(os.listdir(m.p("certificates")), key=str.lower)
        assert after == sorted(state_by_name(az), key=str.lower)
        assert new in after and gone not in after
    finally:
        for name in (gone, new):
            if name in state_by_name(az):
                az.delete(name)


def leaks_with_a_kvfs_frame(text):
    """The blocks of a LeakSanitizer report in text that name a frame of
    kvfs's own sources: libfuse's own handle of a directory never released
    (tests/valgrind.supp) is not kvfs's to free."""
    blocks = text.split("leak of ")[1:]
    return [b for b in blocks
            if re.search(r" in \w+ \.\./src/", b.split("\n\n", 1)[0])]


def test_directory_open_when_the_daemon_ends_is_freed(mount):
    """A collection's directory that the kernel never releases (the
    daemon ends while it is open, halfway through a read) holds none of
    kvfs's memory past the exit: its handle and the listing it pinned are
    freed with the file handles."""
    m = mount()
    fd = os.open(m.p("certificates"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert util.getdents(fd, 80)  # the listing is now the handle's
        m.proc.send_signal(signal.SIGTERM)
        code = m.proc.wait(timeout=30 * util.SLOW)
    finally:
        os.close(fd)
    m.proc = None
    util.umount(m.path)
    text = m.stderr()
    # Under ASan, libfuse's leak alone makes the exit status non-zero.
    assert code == 0 or "ERROR: LeakSanitizer" in text, text
    assert not leaks_with_a_kvfs_frame(text), text


def test_cert_pem_and_der_equal_vault(shared_mount, fake):
    for name, cert in state_by_name(fake).items():
        if name in CLOSED:
            continue
        der = base64.b64decode(latest(cert)["cer"])
        with open(shared_mount.p("certificates", name, "cert.der"), "rb") as f:
            assert f.read() == der, name
        with open(shared_mount.p("certificates", name, "cert.pem")) as f:
            assert f.read() == ssl.DER_cert_to_PEM_cert(der), name


def test_root_lists_the_collections_and_kvfs(shared_mount):
    assert sorted(os.listdir(shared_mount.path)) == [".kvfs", "certificates",
                                                     "expiring"]
    assert os.stat(shared_mount.path).st_nlink == 5
    for name in ("Certificates", "certificate", "CERTIFICATES"):
        with pytest.raises(FileNotFoundError):
            os.stat(shared_mount.p(name))


def test_certificate_directory_lists_its_files(shared_mount):
    files = set(os.listdir(shared_mount.p("certificates", "www")))
    assert {"cert.pem", "cert.der"} <= files


def test_modes_owner_and_times(shared_mount, fake):
    st_root = os.stat(shared_mount.p("certificates"))
    assert stat.S_ISDIR(st_root.st_mode)
    assert stat.S_IMODE(st_root.st_mode) == 0o555
    now = time.time()
    for name, cert in state_by_name(fake).items():
        d = shared_mount.p("certificates", name)
        st = os.stat(d)
        assert stat.S_IMODE(st.st_mode) == 0o555, name
        assert st.st_mtime == cert["updated"], name
        assert st.st_ctime == cert["updated"], name
        assert st.st_atime == cert["created"], name
        assert (st.st_uid, st.st_gid) == (os.getuid(), os.getgid())
        if not name.startswith("bulk-") or name == "bulk-000":
            f = os.stat(os.path.join(d, "cert.pem"))
            closed = (not cert["enabled"] or now < cert["nbf"]
                      or now >= cert["exp"])
            assert stat.S_IMODE(f.st_mode) == (0 if closed else 0o444), name
            assert f.st_mtime == cert["updated"], name
            assert f.st_atime == cert["created"], name
            # a closed file is not fetched just to be stat'ed
            assert (f.st_size > 0) == (not closed), name


@pytest.mark.parametrize("name", CLOSED)
def test_closed_certificates_refuse_open_even_for_root(shared_mount, name):
    assert os.getuid() == 0
    for fn in ("cert.pem", "cert.der"):
        with pytest.raises(PermissionError):
            open(shared_mount.p("certificates", name, fn), "rb")


def test_allow_expired_opens_expired_and_future_not_disabled(mount, fake):
    m = mount(allow_expired=True)
    state = state_by_name(fake)
    for name in ("expired-cert", "future-cert"):
        p = m.p("certificates", name, "cert.der")
        assert stat.S_IMODE(os.stat(p).st_mode) == 0o444
        with open(p, "rb") as f:
            assert f.read() == base64.b64decode(latest(state[name])["cer"])
    with pytest.raises(PermissionError):
        open(m.p("certificates", "disabled-cert", "cert.pem"))


def test_owner_from_uid_gid(mount):
    m = mount(uid=4242, gid=4343)
    st = os.stat(m.p("certificates", "www", "cert.pem"))
    assert (st.st_uid, st.st_gid) == (4242, 4343)


def test_case_insensitive_lookup_keeps_vault_spelling(shared_mount, fake):
    assert "WebFrontend" in os.listdir(shared_mount.p("certificates"))
    assert "webfrontend" not in os.listdir(shared_mount.p("certificates"))
    for spelling in ("WWW", "Www", "webfrontend", "WEBFRONTEND"):
        with open(shared_mount.p("certificates", spelling, "cert.pem")) as f:
            assert f.read().startswith("-----BEGIN CERTIFICATE-----")


@pytest.mark.parametrize("bad", ["a.b", "a_b", "a b", "x" * 128, "ünï",
                                 ".hidden", "www%2fcert.pem"])
def test_invalid_names_never_become_paths(shared_mount, az, bad):
    with pytest.raises(FileNotFoundError):
        os.stat(shared_mount.p("certificates", bad))
    assert [e for e in az.log() if e["server"] == "vault"] == []


def test_unknown_certificate_costs_no_request(shared_mount, az):
    with pytest.raises(FileNotFoundError):
        os.stat(shared_mount.p("certificates", "does-not-exist"))
    assert [e for e in az.log() if e["server"] == "vault"] == []


def eroFS(fn, *args):
    with pytest.raises(OSError) as e:
        fn(*args)
    assert e.value.errno == errno.EROFS, e.value


def test_every_write_is_erofs(shared_mount):
    d = shared_mount.p("certificates", "www")
    f = os.path.join(d, "cert.pem")
    eroFS(open, os.path.join(d, "new.pem"), "w")
    eroFS(open, f, "w")
    eroFS(open, f, "a")
    eroFS(os.unlink, f)
    eroFS(os.mkdir, os.path.join(d, "sub"))
    eroFS(os.rmdir, d)
    eroFS(os.rename, f, os.path.join(d, "x.pem"))
    eroFS(os.chmod, f, 0o644)
    eroFS(os.chown, f, 1, 1)
    eroFS(os.utime, f, (0, 0))
    eroFS(os.truncate, f, 0)
    eroFS(os.symlink, "cert.pem", os.path.join(d, "link"))
    eroFS(os.link, f, os.path.join(d, "hard"))
    eroFS(os.setxattr, f, "user.test", b"1")
