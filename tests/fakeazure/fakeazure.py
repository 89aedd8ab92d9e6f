#!/usr/bin/python3
"""The fake Azure: Entra ID, IMDS/App Service, Key Vault, a foreign origin
and a control API, in one process on 127.0.0.1.

    /usr/bin/python3 tests/fakeazure/fakeazure.py --state-dir DIR [--bulk N]
        [--bulk-one-leaf] [--bulk-secrets N]

Start-up order: generate keys and certificates, bind every server, seed the
vault, start serving, and only then write DIR/info.json (atomically) as the
readiness signal.  Runs until SIGTERM or SIGINT and exits 0.
See README.md in this directory.
"""

import argparse
import os
import secrets
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pki  # noqa: E402
import seed  # noqa: E402
from control import ControlHandler  # noqa: E402
from entra import LoginHandler  # noqa: E402
from foreign import ForeignHandler  # noqa: E402
from httpbase import FakeServer, make_ssl_context  # noqa: E402
from imds import IMDS_PATH, APPSERVICE_PATH, ARC_PATH, IdentityHandler  # noqa: E402
from keyvault import VaultHandler  # noqa: E402
from state import State  # noqa: E402

RESOURCE = "https://vault.azure.net"


class Fake:
    """Configuration and identities shared by every handler (server.fake)."""

    def __init__(self, state_dir, host):
        self.state_dir = state_dir
        self.host = host
        self.state = State()
        self.tenant = seed.guid()
        self.subscription = seed.guid()
        self.resource = RESOURCE
        self.vault_name = "kvfs-test"
        self.identity_header = secrets.token_hex(16)
        self.arc_token_dir = os.path.join(state_dir, "arc-tokens")
        self.token_kid = pki.b64url(os.urandom(20))
        self.urls = {}
        self.apps = {}
        self.principals = {}
        self.identities = {}
        self.factory = None
        self.info = {}

    def find_app(self, client_id):
        for name, app in self.apps.items():
            if app["client_id"].lower() == client_id.lower():
                return name, app
        return None, None

    def find_identity(self, selectors):
        """Managed identity principal for {client_id|object_id|msi_res_id: value} or None."""
        if not selectors:
            return self.principals["mi:system"]
        (key, value), = selectors.items()
        for name in ("system", "user"):
            ident = self.identities[name]
            if ident.get(key, "").lower() == value.lower():
                return self.principals["mi:" + name]
        return None


def parse_args(argv):
    p = argparse.ArgumentParser(description="fake Azure (Entra ID, IMDS, Key Vault) for kvfs tests")
    p.add_argument("--state-dir", required=True)
    p.add_argument("--bulk", type=int, default=60)
    p.add_argument("--bulk-one-leaf", action="store_true",
                   help="the bulk certificates share one leaf: a vault of 100,000 in seconds")
    p.add_argument("--bulk-secrets", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    for name in ("vault", "login", "imds", "control", "foreign"):
        p.add_argument("--%s-port" % name, type=int, default=0)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    t0 = time.time()
    state_dir = os.path.abspath(args.state_dir)
    os.makedirs(state_dir, exist_ok=True)
    info_path = os.path.join(state_dir, "info.json")
    if os.path.exists(info_path):
        os.unlink(info_path)

    fake = Fake(state_dir, args.host)
    os.makedirs(fake.arc_token_dir, mode=0o700, exist_ok=True)
    pool = pki.KeyPool(spare=2)
    # root, intermediate, two shared leaf keys, the client cert, two RSA keys
    pool.prime(7)

    host = args.host
    ips = ["127.0.0.1"]
    dns = ["localhost"]
    if host not in ips + dns:
        try:
            import ipaddress
            ipaddress.ip_address(host)
            ips.append(host)
        except ValueError:
            dns.append(host)
    ca_file, cert_file, key_file = seed.make_tls(state_dir, ips, dns)
    ctx = make_ssl_context(cert_file, key_file)

    servers = {
        "vault": FakeServer((host, args.vault_port), VaultHandler, fake, "vault", ctx),
        "login": FakeServer((host, args.login_port), LoginHandler, fake, "login", ctx),
        "imds": FakeServer((host, args.imds_port), IdentityHandler, fake, "imds"),
        "control": FakeServer((host, args.control_port), ControlHandler, fake, "control",
                              logged=False),
        "foreign": FakeServer((host, args.foreign_port), ForeignHandler, fake, "foreign", ctx),
    }
    hp = "[%s]" % host if ":" in host else host
    fake.urls = {
        "vault": "https://%s:%d" % (hp, servers["vault"].port),
        "login": "https://%s:%d" % (hp, servers["login"].port),
        "imds": "http://%s:%d" % (hp, servers["imds"].port),
        "control": "http://%s:%d" % (hp, servers["control"].port),
        "foreign": "https://%s:%d" % (hp, servers["foreign"].port),
    }

    now = int(time.time())
    fake.factory = seed.Factory(fake.state, pool, now)
    seeded = seed.seed_vault(fake.factory, args.bulk, args.bulk_one_leaf)
    secrets_seeded = seed.seed_secrets(fake.factory)
    secrets_seeded += seed.seed_bulk_secrets(fake.factory, args.bulk_secrets)
    keys_seeded = seed.seed_keys(fake.factory)
    root_file = os.path.join(state_dir, "root-ca.pem")
    pki.write_public(root_file, pki.cert_pem(fake.factory.root))
    int_file = os.path.join(state_dir, "intermediate-ca.pem")
    pki.write_public(int_file, pki.cert_pem(fake.factory.intermediate))

    fake.apps = seed.make_apps(state_dir, pool)
    roles = {"secret": "full", "cert": "full", "workload": "full",
             "reader": "reader", "nolist": "nolist"}
    for name, app in fake.apps.items():
        app["object_id"] = seed.guid()
        fake.principals[name] = {"name": name, "kind": "app", "client_id": app["client_id"],
                                 "object_id": app["object_id"], "role": roles[name]}
    mi_prefix = ("/subscriptions/%s/resourcegroups/kvfs-test/providers/"
                 "Microsoft.ManagedIdentity/userAssignedIdentities/" % fake.subscription)
    fake.identities = {
        "system": {"client_id": seed.guid(), "object_id": seed.guid()},
        "user": {"client_id": seed.guid(), "object_id": seed.guid(),
                 "msi_res_id": mi_prefix + "kvfs-test"},
    }
    for name, ident in fake.identities.items():
        fake.principals["mi:" + name] = {
            "name": "mi:" + name, "kind": "managed_identity", "client_id": ident["client_id"],
            "object_id": ident["object_id"], "role": "full",
            "mi_res_id": ident.get("msi_res_id"), "appidacr": "2"}

    threads = []
    for name, srv in servers.items():
        t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.2},
                             name="serve-" + name, daemon=True)
        t.start()
        threads.append(t)

    info = {
        "pid": os.getpid(),
        "state_dir": state_dir,
        "ca_file": ca_file,
        "root_ca": root_file,
        "intermediate_ca": int_file,
        "vault_url": fake.urls["vault"],
        "authority": fake.urls["login"],
        "imds_url": fake.urls["imds"] + IMDS_PATH,
        "imds_base": fake.urls["imds"],
        "identity_endpoint": fake.urls["imds"] + APPSERVICE_PATH,
        "identity_header": fake.identity_header,
        "arc_identity_endpoint": fake.urls["imds"] + ARC_PATH,   # Arc's IDENTITY_ENDPOINT
        "arc_imds_endpoint": fake.urls["imds"],                  # Arc's IMDS_ENDPOINT
        "arc_token_dir": fake.arc_token_dir,
        "control_url": fake.urls["control"],
        "foreign_url": fake.urls["foreign"],
        "tenant": fake.tenant,
        "subscription": fake.subscription,
        "vault_name": fake.vault_name,
        "resource": fake.resource,
        "token_endpoint": "%s/%s/oauth2/v2.0/token" % (fake.urls["login"], fake.tenant),
        "apps": seed.public_apps(fake.apps),
        "identities": fake.identities,
        "certificates": sorted((c.name for c in seeded), key=str.lower),
        "secrets": sorted((c.name for c in secrets_seeded), key=str.lower),
        "keys": sorted((c.name for c in keys_seeded), key=str.lower),
        "bulk": args.bulk,
        "bulk_secrets": args.bulk_secrets,
        "startup_seconds": round(time.time() - t0, 3),
    }
    fake.info = info

    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    seed.dump_json(info_path, info)
    sys.stderr.write("fakeazure: ready in %.2fs, vault %s, control %s\n"
                     % (time.time() - t0, fake.urls["vault"], fake.urls["control"]))
    sys.stderr.flush()

    while not stop.wait(1.0):
        pass
    for srv in servers.values():
        srv.shutdown()
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
