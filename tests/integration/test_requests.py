"""Vault traffic is counted, not timed: the listing costs its pages, a
certificate costs one GET the first time, warm reads cost nothing, and
concurrent first readers share one request."""

import math
import os

import pytest

import util
from util import vault_requests


def bundle_gets(fake, name=None):
    out = []
    for e in vault_requests(fake):
        parts = e["path"].strip("/").split("/")
        if e["method"] == "GET" and len(parts) >= 2 and parts[0] == "certificates":
            if name is None or parts[1].lower() == name.lower():
                out.append(e)
    return out


def list_pages(fake):
    return [e for e in vault_requests(fake)
            if e["path"].rstrip("/") == "/certificates"]


def test_mount_and_ls_cost_only_list_pages(mount, az):
    n = len(az.state()["certificates"])
    m = mount()
    names = os.listdir(m.p("certificates"))
    for name in names:
        os.stat(m.p("certificates", name))  # what ls -l does
    pages = list_pages(az)
    assert len(pages) == math.ceil(n / 25)
    assert all(e["auth"] and e["status"] == 200 for e in pages)
    assert bundle_gets(az) == []
    assert len(vault_requests(az)) == len(pages)


def test_first_read_costs_one_get_and_warm_reads_none(mount, az):
    m = mount()
    az.reset_log()
    p = m.p("certificates", "www", "cert.pem")
    with open(p) as f:
        first = f.read()
    assert len(bundle_gets(az, "www")) == 1
    assert len(vault_requests(az)) == 1
    az.reset_log()
    for _ in range(20):
        with open(p) as f:
            assert f.read() == first
        with open(m.p("certificates", "www", "cert.der"), "rb") as f:
            f.read()
        os.stat(p)
    assert vault_requests(az) == []


def test_concurrent_first_readers_share_one_request(mount, az):
    m = mount()
    az.reset_log()
    # slow the bundle down so the readers really overlap
    az.fault(kind="delay", delay=1.0, count=1, path="^/certificates/mail/?$")
    p = m.p("certificates", "mail", "cert.pem")
    results = []

    def reader(_):
        with open(p) as f:
            results.append(f.read())

    errors = util.read_concurrently(reader, range(8))
    assert errors == []
    assert len(results) == 8 and len(set(results)) == 1
    assert len(bundle_gets(az, "mail")) == 1
