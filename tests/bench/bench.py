#!/usr/bin/python3
"""The kvfs benchmark, end to end: start the fake Azure with N
certificates (or N secrets), mount kvfs against it for real, and measure
it against baselines taken in the same run.  See README.md in this
directory.

    tests/bench/run [--certs 1000,10000] [--runs 3] [--out DIR] [--only ...]

Everything it starts lives under one private mktemp -d directory and is
stopped in a finally: mounts are unmounted, daemons and fakes ended, the
tmpfs unmounted, the directory removed.  Needs root (FUSE and tmpfs
mounts), Debian's python3, curl, jq, node with tests/sdk installed, cc.
"""

import argparse
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "fakeazure"))

from client import FakeAzure  # noqa: E402
from seed import BULK_SECRET_MAX, BULK_SECRET_MIN  # noqa: E402

PAGE = 25
# The scale job's sample: 100 certificates, and a glob (include=) that a
# mount of the bulk vault shows them, and only them, with
SAMPLE = ["bulk-%03d" % i for i in range(100, 200)]
SAMPLE_GLOB = "bulk-1??"
SAMPLE_MIN = 200
# The scale job's memory target: the daemon's VmRSS per listed object,
# after the mount and after `ls -l` of the collection
SCALE_BYTES_PER_OBJECT = 600
# Daemon memory per cached certificate beyond its content (cert.pem + cert.der).
CACHED_OVERHEAD_BYTES = 1024
JOBS = ("cold", "warm", "readers", "curl", "sdk", "secrets", "fleet", "scale")
# The jobs on a vault of N certificates (the secrets job has its own vault)
CERT_JOBS = {"cold", "warm", "readers", "curl", "sdk"}
# What the jobs read in each collection: in the collection's directory,
# each entry's file ("": the entry is the file, benchtool -f '') and the
# files a tmpfs copy of an entry holds.
LAYOUTS = {
    "certificates": {"file": "cert.pem", "copy": ("cert.pem", "cert.der")},
    "secrets": {"file": "", "copy": ()},
}


def log(msg):
    sys.stderr.write("bench: %s\n" % msg)
    sys.stderr.flush()


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def minimum_requests(n):
    """1 token + ceil(N/25) list pages + N bundles or secret values
    (discovery apart)."""
    return {"token": 1, "pages": math.ceil(n / PAGE) if n else 1, "bundles": n,
            "total": 1 + (math.ceil(n / PAGE) if n else 1) + n}


def count_requests(entries, kind="certificates"):
    """Classify the fake's log: login (discovery, token), vault (401
    challenges, list pages and GETs of one object of the collection kind
    ("bundles"), other), and statuses."""
    c = {"discovery": 0, "token": 0, "challenge": 0, "pages": 0, "bundles": 0,
         "other": 0, "throttled": 0, "errors": 0, "vault": 0, "login": 0}
    for e in entries:
        server, path, status = e["server"], e["path"], e["status"]
        if server == "login":
            c["login"] += 1
            if e["method"] == "POST":
                c["token"] += 1
            else:
                c["discovery"] += 1
            continue
        if server != "vault":
            c["other"] += 1
            continue
        c["vault"] += 1
        if status == 429:
            c["throttled"] += 1
        elif status == 401:
            c["challenge"] += 1
        elif status != 200:
            c["errors"] += 1
        if status == 401:
            continue
        p = path.rstrip("/")
        if p == "/" + kind:
            c["pages"] += 1
        elif p.startswith("/%s/" % kind):
            c["bundles"] += 1
        else:
            c["other"] += 1
    # What the job cost against the minimum: the token and the vault
    # requests; discovery and the challenge are reported on their own.
    c["counted"] = c["token"] + c["pages"] + c["bundles"]
    return c


def listdir(path):
    """The entries of a directory, less the dot ones (secrets/.versions)."""
    return [x for x in os.listdir(path) if not x.startswith(".")]


def proc_status(pid):
    """VmRSS and VmHWM in KiB, threads."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM"):
                    out[k] = int(v.split()[0])
                elif k == "Threads":
                    out[k] = int(v)
    except OSError:
        pass
    return out


def cpu_seconds(pid):
    """utime + stime of a process, in seconds (None when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def vault_sockets(vault_url):
    """The client ends (local address:port) of the TCP connections to the
    fake vault's port, open or in TIME_WAIT, as ss sees them."""
    port = vault_url.rsplit(":", 1)[1].split("/")[0]
    out = subprocess.run(["ss", "-Htn", "state", "established", "state", "time-wait",
                          "( dport = :%s )" % port],
                         capture_output=True, text=True).stdout
    return {line.split()[-2] for line in out.splitlines() if line.strip()}


def machine():
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1])
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
    except OSError:
        load = []
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        debian = ""
    return {"nproc": os.cpu_count(), "mem_gib": round(mem / 1048576, 1), "cpu": cpu,
            "kernel": platform.release(), "debian": debian, "loadavg_at_start": load}


# --------------------------------------------------------------------------
# kvfs mounts


class Mount:
    """One kvfs -f daemon on its own mount point, with kvfs's default
    collections or those given."""

    name = "kvfs"

    def __init__(self, bench, fake, label, collections=None, extra=()):
        self.bench = bench
        self.fake = fake
        self.collections = collections
        self.extra = tuple(extra)   # more -o options: "kernel_cache", "include=..."
        self.path = bench.mkdir("mnt-" + label)
        self.err_path = os.path.join(bench.tmp, label + ".stderr")
        self.proc = None
        self.mount_s = None

    def options(self):
        info = self.fake.info
        app = info["apps"]["secret"]
        opts = {
            "auth": "secret", "tenant": info["tenant"], "client_id": app["client_id"],
            "secret_file": app["secret_file"], "authority": info["authority"],
            "ca_file": info["ca_file"],
            # the fake's vault is https://127.0.0.1:PORT, not
            # *.vault.azure.net: kvfs sends a token there only when told
            "resource": info["resource"],
            # no timed revalidation inside a measurement: its list pages
            # would be counted as the workload's; the fleet's rounds are
            # SIGHUPs, which revalidate whatever refresh= says
            "refresh": 31536000,
        }
        if self.collections:
            opts["collections"] = self.collections
        return ",".join(["%s=%s" % kv for kv in opts.items()] + list(self.extra))

    def argv(self):
        return [self.bench.kvfs, "-f", "-o", self.options(), self.fake.info["vault_url"],
                self.path]

    def start(self, wait=True):
        env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
        dev = os.stat(self.path).st_dev
        t0 = time.monotonic()
        with open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(self.argv(), env=env, stdin=subprocess.DEVNULL,
                                         stdout=err, stderr=err)
        self.bench.mounts.append(self)
        if not wait:
            return self
        # The mount exists once the mount point's device changes; kvfs
        # lists the vault before it mounts, so this is "ready".
        deadline = t0 + 120
        while time.monotonic() < deadline:
            try:
                if os.stat(self.path).st_dev != dev:
                    self.mount_s = time.monotonic() - t0
                    return self
            except OSError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %d before mounting: %s"
                                   % (self.name, self.proc.returncode, self.stderr()))
            time.sleep(0.0005)
        raise RuntimeError("%s did not mount %s within 120 s" % (self.name, self.path))

    def mounted(self):
        try:
            return os.stat(self.path).st_dev != os.stat(os.path.dirname(self.path)).st_dev
        except OSError:
            return True  # a dead FUSE daemon leaves ENOTCONN: still mounted

    def stderr(self):
        try:
            with open(self.err_path, errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc is None:
            return
        if self.mounted():
            subprocess.run(["fusermount3", "-u", self.path], stderr=subprocess.DEVNULL)
            if self.mounted():
                subprocess.run(["fusermount3", "-u", "-z", self.path],
                               stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self in self.bench.mounts:
            self.bench.mounts.remove(self)


class NullfsMount(Mount):
    """nullfs -f (nullfs.c) serving a copy of a tree from memory: the FUSE
    floor under kvfs's warm figures."""

    name = "nullfs"

    def __init__(self, bench, source, no_open=False):
        super().__init__(bench, None, "nullfs-noopen" if no_open else "nullfs")
        self.source = source
        self.no_open = no_open

    def argv(self):
        # kvfs's mount options (build_fuse_argv in src/config.c) but its
        # fsname; the bench mounts kvfs without allow_other.
        return ([self.bench.nullfs] + (["--no-open"] if self.no_open else [])
                + [self.source, self.path, "-f", "-o", "ro,subtype=nullfs,fsname=nullfs"])

    def requests(self):
        """The requests nullfs served, which it prints as it exits."""
        for line in reversed(self.stderr().splitlines()):
            if line.startswith("nullfs: {"):
                return json.loads(line.split(": ", 1)[1])
        return None


def kvfs_fuse_defines():
    """src/fs.c's timeouts and thread cap as -D flags: nullfs is built
    with kvfs's settings, whatever they become (the names of
    src/defaults.h in a value are replaced by their values, and a sum of
    numbers in parentheses is summed)."""
    want = ("ENTRY_TIMEOUT", "ATTR_TIMEOUT", "NEGATIVE_TIMEOUT", "MAX_THREADS")
    found, defaults = {}, {}
    for name, into in (("defaults.h", defaults), ("fs.c", found)):
        with open(os.path.join(REPO, "src", name)) as f:
            for line in f:
                w = line.split("/*")[0].split()
                if len(w) >= 3 and w[0] == "#define":
                    # nullfs's STR(MAX_THREADS) must be a number.
                    v = re.sub(r"\w+", lambda m: defaults.get(m[0], m[0]),
                               " ".join(w[2:]))
                    if re.fullmatch(r"\(\s*\d+(\s*\+\s*\d+)+\s*\)", v):
                        v = str(sum(int(x) for x in re.findall(r"\d+", v)))
                    into[w[1]] = v
    found = {k: v for k, v in found.items() if k in want}
    missing = [k for k in want if k not in found]
    if missing:
        raise RuntimeError("src/fs.c defines no %s" % ", ".join(missing))
    return ["-D%s=%s" % (k, found[k]) for k in want]


# --------------------------------------------------------------------------
# the benchmark


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="kvfs-bench-")
        self.mounts = []
        self.fakes = []
        self.tmpfs = []
        self.kvfs = None
        self.tool = None
        self.nullfs = None
        self.counter = 0

    def mkdir(self, label):
        self.counter += 1
        path = os.path.join(self.tmp, "%s-%d" % (label, self.counter))
        os.mkdir(path)
        return path

    # --- set-up and clean-up -------------------------------------------------

    def prepare(self):
        self.kvfs = os.environ.get("KVFS_BINARY")
        if self.kvfs:
            self.kvfs = os.path.abspath(self.kvfs)
        else:
            build = os.path.join(REPO, "build")
            if not os.path.exists(os.path.join(build, "build.ninja")):
                log("meson setup build")
                subprocess.run(["meson", "setup", build], cwd=REPO, check=True,
                               stdout=subprocess.DEVNULL)
            log("ninja -C build kvfs")
            subprocess.run(["ninja", "-C", build, "kvfs"], cwd=REPO, check=True,
                           stdout=subprocess.DEVNULL)
            self.kvfs = os.path.join(build, "kvfs")
        self.tool = self.cc("benchtool")
        fuse = subprocess.run(["pkg-config", "--cflags", "--libs", "fuse3"], check=True,
                              capture_output=True, text=True).stdout.split()
        self.nullfs = self.cc("nullfs", kvfs_fuse_defines() + fuse)
        if "sdk" in self.args.only and not os.path.isdir(
                os.path.join(REPO, "tests", "sdk", "node_modules", "@azure")):
            log("npm ci --prefix tests/sdk")
            subprocess.run(["npm", "ci", "--prefix", os.path.join(REPO, "tests", "sdk")],
                           check=True, stdout=subprocess.DEVNULL)

    def cc(self, name, flags=()):
        """tests/bench/NAME.c built into the private directory."""
        out = os.path.join(self.tmp, name)
        subprocess.run(["cc", "-O2", "-Wall", "-pthread", "-o", out,
                        os.path.join(HERE, name + ".c")] + list(flags), check=True)
        return out

    def cleanup(self):
        for m in list(self.mounts):
            try:
                m.stop()
            except Exception as e:  # keep going: every mount must go
                log("cannot stop the mount %s: %s" % (m.path, e))
        for f in list(self.fakes):
            f.stop()
        self.fakes.clear()
        for path in list(self.tmpfs):
            subprocess.run(["umount", path], stderr=subprocess.DEVNULL)
            self.tmpfs.remove(path)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start_fake(self, n, secrets=0, one_leaf=False):
        """A fake vault holding exactly n certificates (bulk-*) and
        `secrets` plain secrets (bulk-secret-*): the hand-made test
        certificates and secrets (disabled, expired, ...) are deleted, so
        that every client does the same job and a listing of secrets holds
        those secrets only (a certificate's secret is listed too, as
        managed)."""
        fake = FakeAzure(self.mkdir("fake"), bulk=n,
                         extra_args=["--bulk-secrets", str(secrets)]
                         + (["--bulk-one-leaf"] if one_leaf else []))
        fake.start(timeout=60 + (n + secrets) // 50)
        self.fakes.append(fake)
        removed = 0
        for kind, bulk in (("certificates", "bulk-"), ("secrets", "bulk-secret-")):
            for name in fake.info[kind]:
                if not name.startswith(bulk):
                    fake.delete(name, kind=kind)
                    removed += 1
        state = fake.state()
        held = (len(state["certificates"]), len(state["secrets"]))
        assert held == (n, secrets), "fake holds %d certificates and %d secrets, not %d and %d" \
            % (held + (n, secrets))
        log("fake Azure with %d certificates and %d secrets (%d hand-made ones removed)"
            % (n, secrets, removed))
        return fake

    def stop_fake(self, fake):
        fake.stop()
        self.fakes.remove(fake)

    def run_tool(self, *argv, kind="certificates", timeout=3600):
        """benchtool CMD ARGS... over the entries of the collection kind."""
        layout = ["-d", kind, "-f", LAYOUTS[kind]["file"]]
        out = subprocess.run([self.tool] + layout + [str(a) for a in argv],
                             capture_output=True, text=True, timeout=timeout)
        if out.returncode != 0:
            raise RuntimeError("benchtool %s failed: %s" % (argv[0], out.stderr))
        return json.loads(out.stdout)

    # --- cold ------------------------------------------------------------------

    def cold_kvfs(self, fake, n, threads, warm=False, kind="certificates"):
        """Mount, list, read every cert.pem (or, for kind "secrets", every
        secrets/<name> on a mount of that collection) with `threads`
        readers; wall time from exec to the last byte, requests from the
        fake's log.  With warm, the sequential mount also gives the warm
        figures (and, for certificates, memory) before it is unmounted."""
        certs = kind == "certificates"
        fake.reset_log()
        fcpu0 = cpu_seconds(fake.proc.pid)
        # Connections to the vault: those kvfs opened, still open or
        # closed (TIME_WAIT lasts 60 s), less those of earlier clients.
        socks0 = vault_sockets(fake.info["vault_url"])
        t0 = time.monotonic()
        m = Mount(self, fake, "cold%d" % threads if certs else "%s-cold%d" % (kind, threads),
                  collections=None if certs else kind).start()
        try:
            names = listdir(os.path.join(m.path, kind))
            t_list = time.monotonic()
            mem0 = proc_status(m.proc.pid)
            r = self.run_tool("cold", m.path, threads, kind=kind)
            wall = time.monotonic() - t0
            mem1 = proc_status(m.proc.pid)
            res = {
                "threads": threads, "wall_s": wall, "mount_s": m.mount_s,
                "list_s": t_list - t0 - m.mount_s, "read_s": r["read_s"],
                "listed": len(names), "files": r["files"], "read_errors": r["errors"],
                "bytes": r["bytes"], "kvfs_cpu_s": cpu_seconds(m.proc.pid),
                "fake_cpu_s": (cpu_seconds(fake.proc.pid) or 0) - (fcpu0 or 0),
                "requests": count_requests(fake.log(), kind),
                "connections": len(vault_sockets(fake.info["vault_url"]) - socks0),
            }
            if r["errors"]:
                log("kvfs cold %s (%d threads): %d read errors (errno %d)"
                    % (kind, threads, r["errors"], r["first_errno"]))
            if warm:
                if certs:
                    res["memory"] = self.memory(m, n, mem0, mem1)
                res["warm"] = self.warm(m, fake, n, kind, cold=res)
            return res
        finally:
            m.stop()

    def memory(self, m, n, mem0, mem1):
        certs = os.path.join(m.path, "certificates")
        first = os.path.join(certs, sorted(os.listdir(certs))[0])
        pem = os.path.getsize(os.path.join(first, "cert.pem"))
        der = os.path.getsize(os.path.join(first, "cert.der"))
        delta = (mem1.get("VmRSS", 0) - mem0.get("VmRSS", 0)) * 1024
        per = delta / n if n else None
        return {"rss_listed_kib": mem0.get("VmRSS"), "rss_read_kib": mem1.get("VmRSS"),
                "hwm_read_kib": mem1.get("VmHWM"), "threads": mem1.get("Threads"),
                "per_cert_bytes": per, "content_bytes": pem + der,
                "overhead_bytes": per - (pem + der) if per is not None else None}

    def cached_memory(self, m, n, already):
        """Every cert.pem of mount m (already of them cached) read by one reader (as the cold
        job's memory: more readers add connections and malloc arenas, a
        cost per thread, not per certificate): the daemon's memory per
        cached certificate at n objects (self.memory())."""
        mem0 = proc_status(m.proc.pid)
        r = self.run_tool("cold", m.path, 1)
        res = self.memory(m, n - already, mem0, proc_status(m.proc.pid))
        res.update(files=r["files"], read_errors=r["errors"])
        return res

    # --- warm ------------------------------------------------------------------

    def passes(self, n):
        return max(5, min(50, 50000 // max(n, 1)))

    def warm(self, m, fake, n, kind="certificates", cold=None):
        """open+read+close of every cert.pem and stat of every directory
        (for secrets: of every secrets/<name>) on the warm mount, then the
        same on a tmpfs copy of the tree, on nullfs serving that copy
        with and without OPEN/RELEASE, and on a kvfs mount of its own with
        -o kernel_cache (whose cold read must cost what cold, the default
        mode's, cost).  For certificates, also the tmpfs side of the 64
        concurrent readers."""
        fake.reset_log()
        k = self.run_tool("warm", m.path, self.passes(n), kind=kind)
        kreq = count_requests(fake.log(), kind)
        t = self.tmpfs_copy(m, kind)
        rs = None
        try:
            tt = self.run_tool("warm", t, self.passes(n), kind=kind)
            if kind == "certificates":
                rs = self.readers_pair(t, tmpfs=True)
            nf = self.warm_nullfs(t, n, no_open=False, kind=kind)
            nn = self.warm_nullfs(t, n, no_open=True, kind=kind)
        finally:
            self.drop_tmpfs(t)
        kc = self.warm_kernel_cache(fake, n, kind)
        res = {"kvfs_raw": k, "tmpfs_raw": tt, "nullfs_raw": nf, "nullfs_noopen_raw": nn,
               "kcache_raw": kc, "errors": k["errors"], "vault_requests": kreq["vault"],
               "kcache_vault_requests": kc["vault_requests"],
               "kcache_cold_counted": kc["cold_requests"]["counted"],
               "kcache_cold_errors": kc["cold_errors"]}
        if cold is not None:
            res["kcache_requests_equal"] = all(
                kc["cold_requests"][f] == cold["requests"][f]
                for f in ("token", "pages", "bundles", "vault"))
        if rs is not None:
            res["tmpfs_readers"] = rs
        for label, r in (("kvfs", k), ("tmpfs", tt), ("nullfs", nf), ("nullfs_noopen", nn),
                         ("kcache", kc)):
            res[label + "_read_us"] = median(r["read_ns"]) / 1000
            res[label + "_stat_us"] = median(r["stat_ns"]) / 1000
        for label, r in (("nullfs", nf), ("nullfs_noopen", nn)):
            res[label + "_requests"] = r["requests"]
            if r["errors"]:
                log("%s: %d errors in the warm passes" % (label, r["errors"]))
        return res

    def warm_kernel_cache(self, fake, n, kind="certificates"):
        """kvfs -o kernel_cache on a mount of its own: list, the cold read
        with one reader (its requests counted), then the warm passes."""
        certs = kind == "certificates"
        fake.reset_log()
        m = Mount(self, fake, kind + "-kcache", collections=None if certs else kind,
                  extra=["kernel_cache"]).start()
        try:
            listdir(os.path.join(m.path, kind))
            c = self.run_tool("cold", m.path, 1, kind=kind)
            cold = count_requests(fake.log(), kind)
            fake.reset_log()
            r = self.run_tool("warm", m.path, self.passes(n), kind=kind)
            r["vault_requests"] = count_requests(fake.log(), kind)["vault"]
        finally:
            m.stop()
        r["cold_requests"] = cold
        r["cold_errors"] = c["errors"]
        return r

    def warm_nullfs(self, tree, n, no_open, kind="certificates"):
        """The warm passes on nullfs serving tree: the FUSE floor."""
        nm = NullfsMount(self, tree, no_open).start()
        try:
            r = self.run_tool("warm", nm.path, self.passes(n), kind=kind)
        finally:
            nm.stop()
        r["requests"] = nm.requests()
        return r

    def tmpfs_copy(self, m, kind="certificates"):
        """The entries of m's collection kind, as LAYOUTS says, on a tmpfs."""
        t = self.mkdir("tmpfs")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m", "kvfs-bench", t],
                       check=True)
        self.tmpfs.append(t)
        src, dst = os.path.join(m.path, kind), os.path.join(t, kind)
        os.makedirs(dst)
        copy = LAYOUTS[kind]["copy"]
        for name in listdir(src):
            if not copy:
                shutil.copyfile(os.path.join(src, name), os.path.join(dst, name))
                continue
            os.makedirs(os.path.join(dst, name))
            for f in copy:
                shutil.copyfile(os.path.join(src, name, f), os.path.join(dst, name, f))
        return t

    def drop_tmpfs(self, t):
        subprocess.run(["umount", t], check=False)
        if t in self.tmpfs:
            self.tmpfs.remove(t)

    # --- 64 concurrent readers -------------------------------------------------

    def readers_pair(self, root, tmpfs=False):
        """Warm throughput of 64 readers on one file and on 64 files."""
        out = {}
        for mode in ("same", "diff"):
            r = self.run_tool("readers", root, self.args.readers, mode, self.args.reader_iters)
            out[mode] = {"ops_per_s": r["ok"] / r["total_s"], "errors": r["errors"]}
        return out

    def readers_kvfs(self, fake, n):
        """On a fresh mount: 64 readers released at once on one cold
        certificate, then on 64 cold ones; requests of that first round;
        then their warm throughput."""
        out = {}
        for mode in ("same", "diff"):
            m = Mount(self, fake, "readers-" + mode).start()
            try:
                os.listdir(os.path.join(m.path, "certificates"))
                fake.reset_log()
                cold = self.run_tool("readers", m.path, self.args.readers, mode, 1)
                req = count_requests(fake.log())
                warm = self.run_tool("readers", m.path, self.args.readers, mode,
                                     self.args.reader_iters)
                out[mode] = {
                    "cold_first_round_s": cold["first_round_s"], "cold_errors": cold["errors"],
                    "cold_bundles": req["bundles"],
                    "expected_bundles": 1 if mode == "same" else min(self.args.readers, n),
                    "ops_per_s": warm["ok"] / warm["total_s"], "errors": warm["errors"],
                }
            finally:
                m.stop()
        return out

    # --- baselines -------------------------------------------------------------

    def baseline(self, fake, label, argv, env=None, extra=()):
        out_dir = self.mkdir(label)
        fake.reset_log()
        fcpu0 = cpu_seconds(fake.proc.pid)
        t0 = time.monotonic()
        p = subprocess.run(argv + [os.path.join(fake.state_dir, "info.json"), out_dir]
                           + [str(x) for x in extra],
                           capture_output=True, text=True, env=env, timeout=7200)
        wall = time.monotonic() - t0
        if p.returncode != 0:
            raise RuntimeError("%s failed (%d): %s" % (label, p.returncode, p.stderr[-2000:]))
        written = len([f for f in os.listdir(out_dir) if f.endswith(".pem")])
        shutil.rmtree(out_dir, ignore_errors=True)
        return {"wall_s": wall, "written": written,
                "fake_cpu_s": (cpu_seconds(fake.proc.pid) or 0) - (fcpu0 or 0),
                "requests": count_requests(fake.log()), "stdout": p.stdout.strip()[-500:]}

    def curl(self, fake):
        return self.baseline(fake, "curl", ["bash", os.path.join(HERE, "curl-baseline.sh")])

    def sdk(self, fake, concurrency):
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=fake.info["ca_file"])
        r = self.baseline(fake, "sdk%d" % concurrency,
                          ["node", os.path.join(HERE, "sdk-baseline.mjs")], env=env,
                          extra=[concurrency])
        r["concurrency"] = concurrency
        return r

    # --- one vault size ----------------------------------------------------------

    def size(self, n):
        a = self.args
        res = {"n": n, "minimum": minimum_requests(n), "runs": []}
        if "secrets" in a.only:
            res["secrets"] = self.secrets(n)
        if "scale" in a.only:
            res["scale"] = self.scale(n)
        if not a.only & CERT_JOBS:
            return res
        fake = self.start_fake(n)
        try:
            for run in range(a.runs):
                r = {}
                log("N=%d run %d/%d" % (n, run + 1, a.runs))
                if "cold" in a.only or "warm" in a.only:
                    r["kvfs_seq"] = self.cold_kvfs(fake, n, 1, warm="warm" in a.only)
                    log("  kvfs sequential: %.2f s" % r["kvfs_seq"]["wall_s"])
                if "cold" in a.only:
                    for t in a.threads:
                        r["kvfs_par%d" % t] = self.cold_kvfs(fake, n, t)
                        log("  kvfs %d readers: %.2f s" % (t, r["kvfs_par%d" % t]["wall_s"]))
                if "readers" in a.only:
                    r["readers"] = self.readers_kvfs(fake, n)
                    log("  64 readers: %s" % {k: round(v["ops_per_s"])
                                              for k, v in r["readers"].items()})
                if "sdk" in a.only:
                    r["sdk_seq"] = self.sdk(fake, 1)
                    log("  SDK sequential: %.2f s" % r["sdk_seq"]["wall_s"])
                    r["sdk_conc"] = self.sdk(fake, a.sdk_concurrency)
                    log("  SDK %d concurrent: %.2f s" % (a.sdk_concurrency,
                                                         r["sdk_conc"]["wall_s"]))
                if "curl" in a.only and run < a.curl_runs:
                    r["curl"] = self.curl(fake)
                    log("  curl loop: %.2f s" % r["curl"]["wall_s"])
                res["runs"].append(r)
        finally:
            self.stop_fake(fake)
        return res

    # --- scale ---------------------------------------------------------------------

    def scale(self, n):
        """The scale job on a vault of n certificates whose versions share
        one leaf (--bulk-one-leaf: 100,000 are made in seconds), and the
        daemon's memory on a vault of one, to subtract."""
        base = self.scale_base()
        fake = self.start_fake(n, one_leaf=True)
        runs = []
        try:
            for run in range(self.args.runs):
                log("scale N=%d run %d/%d" % (n, run + 1, self.args.runs))
                runs.append(self.scale_run(fake, n))
                log("  mount %.2f s (client: token + listing %.2f s), ls -l warm %.2f s"
                    % (runs[-1]["mount_s"], runs[-1]["client"]["total_s"],
                       runs[-1]["ls_s"][-1]))
        finally:
            self.stop_fake(fake)
        return {"n": n, "minimum": minimum_requests(n), "runs": runs, "base": base}

    def scale_base(self):
        """VmRSS (KiB) of a mount of a vault of one certificate, after the
        mount and after `ls -l certificates/` twice: what a daemon holds
        whatever the vault's size."""
        fake = self.start_fake(1, one_leaf=True)
        try:
            m = Mount(self, fake, "scale-base").start()
            try:
                return self.scale_rss(m)
            finally:
                m.stop()
        finally:
            self.stop_fake(fake)

    def scale_rss(self, m, ls_s=None):
        """The daemon's VmRSS (KiB) after the mount and after `ls -l
        certificates/` twice (cold, then warm; their times go to ls_s)."""
        rss = {"mount_kib": proc_status(m.proc.pid).get("VmRSS")}
        for _ in range(2):
            t0 = time.monotonic()
            out = subprocess.run(["ls", "-l", os.path.join(m.path, "certificates")],
                                 check=True, capture_output=True, text=True,
                                 timeout=3600).stdout
            if ls_s is not None:
                ls_s.append(time.monotonic() - t0)
        rss["ls_kib"] = proc_status(m.proc.pid).get("VmRSS")
        rss["listed"] = len([x for x in out.splitlines() if not x.startswith("total ")])
        return rss

    def scale_run(self, fake, n):
        """The token and the listing by a plain client (list-baseline.mjs),
        then kvfs's mount (from exec: start-up, token, listing), `ls -l
        certificates/` twice (cold, then warm), and open+read+close of
        SAMPLE's cert.pem on that mount and on one that shows only them
        (include=): what a lookup and an open cost with n objects and with
        a hundred."""
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=fake.info["ca_file"])
        p = subprocess.run(["node", os.path.join(HERE, "list-baseline.mjs"),
                            os.path.join(fake.state_dir, "info.json")],
                           capture_output=True, text=True, env=env, timeout=3600)
        if p.returncode != 0:
            raise RuntimeError("list-baseline.mjs failed (%d): %s"
                               % (p.returncode, p.stderr[-2000:]))
        res = {"client": json.loads(p.stdout)}
        fake.reset_log()
        m = Mount(self, fake, "scale").start()
        try:
            res["mount_s"] = m.mount_s
            res["ls_s"] = []
            res["rss"] = self.scale_rss(m, res["ls_s"])
            res["listed"] = res["rss"]["listed"]
            # the mount's requests, and ls -l must have added none
            res["ls_requests"] = res["mount_requests"] = count_requests(fake.log())
            if n >= SAMPLE_MIN:
                small = Mount(self, fake, "scale-sample",
                              extra=["include=" + SAMPLE_GLOB]).start()
                try:
                    res["open_us"], res["open_sample_us"] = self.sample_reads(m, small)
                finally:
                    small.stop()
            # After the sample's opens (what an open costs with n listed),
            # which cached its hundred already.
            res["cached"] = self.cached_memory(m, n, len(SAMPLE) if n >= SAMPLE_MIN else 0)
        finally:
            m.stop()
        return res

    def sample_reads(self, *mounts):
        """open+read+close of SAMPLE's cert.pem on each mount, read once
        cold, then timed over 40 passes, the mounts' passes taken in turn
        (so that the machine's load falls on each alike): µs per operation,
        the median pass of each mount."""
        paths = [[os.path.join(m.path, "certificates", x, "cert.pem") for x in SAMPLE]
                 for m in mounts]
        passes = [[] for _ in mounts]
        for i in range(41):
            for k, ps in enumerate(paths):
                t0 = time.perf_counter_ns()
                for path in ps:
                    fd = os.open(path, os.O_RDONLY)
                    os.read(fd, 65536)
                    os.close(fd)
                if i:
                    passes[k].append((time.perf_counter_ns() - t0) / len(ps) / 1000)
        return [median(p) for p in passes]

    # --- secrets -------------------------------------------------------------------

    def secrets(self, n):
        """The secrets job on a vault of n plain secrets (and nothing else
        it would list): `ls -l secrets/` on a fresh mount, then cold reads
        with 1 reader (and the warm passes on that mount) and with each
        pool, each on a fresh mount with collections=secrets."""
        a = self.args
        fake = self.start_fake(0, secrets=n)
        res = {"n": n, "minimum": minimum_requests(n), "runs": []}
        try:
            for run in range(a.runs):
                log("N=%d secrets run %d/%d" % (n, run + 1, a.runs))
                r = {"ls": self.ls_kvfs(fake, "secrets")}
                log("  ls -l secrets/: %d pages, %d GETs"
                    % (r["ls"]["requests"]["pages"], r["ls"]["requests"]["bundles"]))
                r["kvfs_seq"] = self.cold_kvfs(fake, n, 1, warm=True, kind="secrets")
                log("  kvfs sequential: %.2f s" % r["kvfs_seq"]["wall_s"])
                for t in a.threads:
                    r["kvfs_par%d" % t] = self.cold_kvfs(fake, n, t, kind="secrets")
                    log("  kvfs %d readers: %.2f s" % (t, r["kvfs_par%d" % t]["wall_s"]))
                res["runs"].append(r)
        finally:
            self.stop_fake(fake)
        return res

    def ls_kvfs(self, fake, kind):
        """From exec of kvfs to the end of `ls -l KIND/` on its mount: the
        requests (the listing's, no object's) and the entries ls showed."""
        fake.reset_log()
        m = Mount(self, fake, "ls-" + kind, collections=kind).start()
        try:
            out = subprocess.run(["ls", "-l", os.path.join(m.path, kind)], check=True,
                                 capture_output=True, text=True).stdout
            return {"listed": len([x for x in out.splitlines() if not x.startswith("total ")]),
                    "requests": count_requests(fake.log(), kind)}
        finally:
            m.stop()

    # --- the fleet -----------------------------------------------------------------

    def fleet(self):
        a = self.args
        n = a.fleet_certs
        budget, window = a.fleet_budget
        fake = self.start_fake(n)
        mounts = []
        res = {"mounts": a.fleet_mounts, "certificates": n, "files_per_round": a.fleet_files,
               "budget": {"requests": budget, "window_s": window}, "rounds": []}
        try:
            fake.throttle(budget, window)
            fake.reset_log()
            failed = 0
            t0 = time.monotonic()
            for i in range(a.fleet_mounts):
                try:
                    mounts.append(Mount(self, fake, "fleet%02d" % i).start())
                except RuntimeError as e:
                    failed += 1
                    log("fleet mount %d failed: %s" % (i, str(e).splitlines()[-1][:200]))
            res["rounds"].append(self.fleet_round_result(
                "mount (one after the other)", fake, t0, failed_mounts=failed))
            self.fleet_wait_window(t0, window)
            names = sorted(fake.info["certificates"], key=str.lower)
            names = [x for x in names if x.startswith("bulk-")][:a.fleet_files]
            for k in range(a.fleet_rounds):
                t0 = time.monotonic()
                fake.reset_log()
                errors = self.fleet_read(mounts, names)
                res["rounds"].append(self.fleet_round_result(
                    "list + read %d files%s" % (len(names), " (cold)" if k == 0 else ""),
                    fake, t0, read_errors=errors))
                self.fleet_wait_window(t0, window)
            for k in range(a.fleet_hup_rounds):
                t0 = time.monotonic()
                fake.reset_log()
                for m in mounts:
                    if m.proc and m.proc.poll() is None:
                        m.proc.send_signal(signal.SIGHUP)
                supported = self.fleet_settle(fake, a.fleet_hup_wait)
                alive = sum(1 for m in mounts if m.proc and m.proc.poll() is None)
                errors = self.fleet_read(mounts, names)
                r = self.fleet_round_result("SIGHUP revalidation + read", fake, t0,
                                            read_errors=errors, alive=alive)
                r["hup_supported"] = supported
                res["rounds"].append(r)
                if not supported:
                    log("fleet: no vault request within %.0f s of SIGHUP: revalidation "
                        "on SIGHUP is not supported by this kvfs" % a.fleet_hup_wait)
                    break
                self.fleet_wait_window(t0, window)
            res["rss_kib_per_mount"] = median([proc_status(m.proc.pid).get("VmRSS")
                                               for m in mounts if m.proc])
        finally:
            for m in mounts:
                m.stop()
            self.stop_fake(fake)
        return res

    def fleet_read(self, mounts, names):
        errors = [0]
        lock = threading.Lock()

        def one(m):
            bad = 0
            try:
                os.listdir(os.path.join(m.path, "certificates"))
            except OSError:
                bad += 1
            for name in names:
                try:
                    with open(os.path.join(m.path, "certificates", name, "cert.pem"), "rb") as f:
                        f.read()
                except OSError:
                    bad += 1
            with lock:
                errors[0] += bad

        threads = [threading.Thread(target=one, args=(m,)) for m in mounts]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors[0]

    def fleet_settle(self, fake, wait):
        """Wait for the fleet's revalidation requests: True once requests
        came and then stopped for 2 s; False when none came within wait."""
        deadline = time.monotonic() + wait
        seen, quiet_since = 0, time.monotonic()
        while True:
            n = len(fake.log(server="vault"))
            now = time.monotonic()
            if n != seen:
                seen, quiet_since = n, now
            elif seen and now - quiet_since >= 2:
                return True
            if not seen and now >= deadline:
                return False
            if now >= deadline + 120:
                return True
            time.sleep(0.25)

    def fleet_round_result(self, kind, fake, t0, **kw):
        c = count_requests(fake.log())
        budget, window = self.args.fleet_budget
        r = {"kind": kind, "seconds": time.monotonic() - t0, "vault_requests": c["vault"],
             "throttled": c["throttled"], "served": c["vault"] - c["throttled"],
             "login_requests": c["login"], "pages": c["pages"], "bundles": c["bundles"]}
        r.update(kw)
        log("fleet round '%s': %d vault requests, %d throttled"
            % (kind, r["vault_requests"], r["throttled"]))
        return r

    def fleet_wait_window(self, t0, window):
        """Start the next round with the budget's window passed."""
        left = t0 + window - time.monotonic()
        if left > 0:
            time.sleep(left)
        time.sleep(0.5)


# --------------------------------------------------------------------------
# the report


def fmt_s(x):
    if x is None:
        return "–"
    return "%.2f s" % x if x >= 1 else "%.0f ms" % (x * 1000)


def fmt_ratio(x):
    if x is None:
        return "–"
    return "%.2f×" % x if x < 10 else "%.0f×" % x


def mark(ok):
    return "met" if ok else "**missed**"


def fuse_floor(w):
    """The warm figures of both kvfs modes against nullfs with and without
    open (what any FUSE filesystem pays) and tmpfs, in one table."""
    L = ["Both kvfs modes and the FUSE floor: the same passes on kvfs with "
         "`-o kernel_cache` (a mount of its own, read cold once first), and on nullfs "
         "(`nullfs.c`), which serves the tmpfs copy from memory with kvfs's timeouts, "
         "keep_cache and loop; its open only looks the file up. With `--no-open` it (and "
         "kvfs with `kernel_cache`) answers the first OPEN with ENOSYS and the kernel "
         "sends no OPEN or RELEASE after it.", "",
         "| filesystem | open+read+close | × tmpfs | kvfs ÷ it | stat | × tmpfs |",
         "|---|---|---|---|---|---|"]
    rows = (("kvfs", "kvfs (default)"), ("kcache", "kvfs `-o kernel_cache`"),
            ("nullfs", "FUSE with open (nullfs)"),
            ("nullfs_noopen", "FUSE without open (nullfs --no-open)"), ("tmpfs", "tmpfs"))
    for key, label in rows:
        rd, st = w.get(key + "_read_us"), w.get(key + "_stat_us")
        if rd is None or st is None:
            continue
        L.append("| %s | %.1f µs | %s | %s | %.2f µs | %s |" % (
            label, rd, fmt_ratio(rd / w["tmpfs_read_us"]),
            fmt_ratio(w["kvfs_read_us"] / rd), st, fmt_ratio(st / w["tmpfs_stat_us"])))
    L.append("")
    q, qn = w["nullfs_requests"], w["nullfs_noopen_requests"]
    if q.get("open") is not None and qn.get("open") is not None:
        L.append("Requests nullfs served over all its passes: with open, %d OPEN, %d RELEASE, "
                 "%d READ; without, %d OPEN, %d RELEASE, %d READ."
                 % (q["open"], q["release"], q["read"], qn["open"], qn["release"], qn["read"]))
        L.append("")
    if w.get("kcache_cold_counted") is not None:
        L.append("kvfs `-o kernel_cache`: its cold read cost %d requests (token + pages + "
                 "objects), %s the default mode's, with %d read errors; %d vault requests "
                 "during its warm passes." % (
                     w["kcache_cold_counted"],
                     "the same as" if w.get("kcache_requests_equal") else "**not** the same as",
                     w["kcache_cold_errors"] or 0, w["kcache_vault_requests"] or 0))
        L.append("")
    return L


def kernel_cache_failures(n, w):
    """The gates of -o kernel_cache at vault size n (certificates): warm
    open+read+close ≤ 1.5× tmpfs in the same run, the cold read's requests
    those of the default mode, no read error, no request when warm.
    Empty when met (or when the warm job did not run)."""
    if not w or w.get("kcache_read_us") is None:
        return []
    out = []
    ratio = w["kcache_read_us"] / w["tmpfs_read_us"]
    if ratio > 1.5:
        out.append("N=%d: kernel_cache warm open+read+close %.2f× tmpfs (target ≤ 1.5×)"
                   % (n, ratio))
    if not w.get("kcache_requests_equal"):
        out.append("N=%d: kernel_cache cold read cost other requests than the default mode"
                   % n)
    if w.get("kcache_cold_errors") or w.get("kcache_vault_requests"):
        out.append("N=%d: kernel_cache: %d read errors, %d vault requests when warm"
                   % (n, w.get("kcache_cold_errors") or 0, w.get("kcache_vault_requests") or 0))
    return out


def med_of(runs, key, *path):
    """The median over runs of run[key][path...] (missing ones left out)."""
    vals = []
    for r in runs:
        v = r.get(key)
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        vals.append(v)
    return median(vals)


def summarize_clients(runs, keys):
    """Medians of the cold figures of each client in keys that ran."""
    out = {}
    for k in keys:
        if not any(k in r for r in runs):
            continue
        out[k] = {
            "wall_s": med_of(runs, k, "wall_s"),
            "runs": sum(1 for r in runs if k in r),
            "requests": {f: med_of(runs, k, "requests", f) for f in
                         ("discovery", "token", "challenge", "pages", "bundles", "counted",
                          "vault", "throttled", "errors")},
            "fake_cpu_s": med_of(runs, k, "fake_cpu_s"),
            "kvfs_cpu_s": med_of(runs, k, "kvfs_cpu_s"),
            "connections": med_of(runs, k, "connections"),
            "read_errors": med_of(runs, k, "read_errors"),
        }
    return out


def summarize_warm(runs):
    """Medians of the warm passes on the runs' sequential mounts (None
    when none had them)."""
    warms = [r["kvfs_seq"]["warm"] for r in runs if "warm" in r.get("kvfs_seq", {})]
    if not warms:
        return None
    w = {f: median([x.get(f) for x in warms])
         for f in ("kvfs_read_us", "kvfs_stat_us", "tmpfs_read_us", "tmpfs_stat_us",
                   "nullfs_read_us", "nullfs_stat_us", "nullfs_noopen_read_us",
                   "nullfs_noopen_stat_us", "vault_requests", "kcache_read_us",
                   "kcache_stat_us", "kcache_vault_requests", "kcache_cold_counted",
                   "kcache_cold_errors")}
    w["kcache_requests_equal"] = all(x.get("kcache_requests_equal") for x in warms)
    for v in ("nullfs", "nullfs_noopen"):
        reqs = [x.get(v + "_requests") or {} for x in warms]
        w[v + "_requests"] = {op: median([q.get(op) for q in reqs])
                              for op in ("getattr", "open", "read", "release")}
    if all("tmpfs_readers" in x for x in warms):
        w["tmpfs_readers"] = {
            mode: median([x["tmpfs_readers"][mode]["ops_per_s"] for x in warms])
            for mode in ("same", "diff")}
    return w


def secrets_failures(sec):
    """Where the secrets job's kvfs differed from the minimum, run by run
    and mount by mount: `ls -l secrets/` must cost 1 token and the list
    pages, no GET; each cold mount 1 token, the pages and one GET per
    secret, and nothing else from the vault.  Empty when met exactly."""
    n, mn = sec["n"], sec["minimum"]
    out = []
    for i, r in enumerate(sec["runs"], 1):
        q = r["ls"]["requests"]
        got = (r["ls"]["listed"], q["token"], q["pages"], q["bundles"], q["vault"])
        want = (n, 1, mn["pages"], 0, mn["pages"])
        if got != want:
            out.append("run %d, ls -l secrets/: listed %d, %d token, %d pages, %d GETs, "
                       "%d vault requests; want %d, %d, %d, %d, %d" % ((i,) + got + want))
        for k in sorted(x for x in r if x.startswith("kvfs")):
            c, q = r[k], r[k]["requests"]
            got = (c["listed"], c["files"], c["read_errors"], q["token"], q["pages"],
                   q["bundles"], q["vault"])
            want = (n, n, 0, 1, mn["pages"], n, mn["pages"] + n)
            if got != want:
                out.append("run %d, %s: listed %d, read %d, %d read errors, %d token, "
                           "%d pages, %d GETs, %d vault requests; want %d, %d, %d, %d, %d, "
                           "%d, %d" % ((i, k) + got + want))
    return out


def summarize_scale(sc):
    """Medians of the scale job's runs, and where it missed its targets:
    mount time (token + listing) ≤ 1.2× the plain client's token +
    listing, `ls -l certificates/` warm < 2 s, exactly 1 token and the
    list pages to mount and nothing more for ls -l, an open with n objects
    ≤ 1.5× one with a hundred, the daemon's memory per listed object ≤
    SCALE_BYTES_PER_OBJECT after the mount and after ls -l."""
    n, mn, runs = sc["n"], sc["minimum"], sc["runs"]
    out = {"n": n, "minimum": mn, "runs": len(runs),
           "mount_s": median([r["mount_s"] for r in runs]),
           "client_s": median([r["client"]["total_s"] for r in runs]),
           "client_token_s": median([r["client"]["token_s"] for r in runs]),
           "client_list_s": median([r["client"]["list_s"] for r in runs]),
           "ls_cold_s": median([r["ls_s"][0] for r in runs]),
           "ls_warm_s": median([r["ls_s"][-1] for r in runs]),
           "open_us": median([r.get("open_us") for r in runs]),
           "open_sample_us": median([r.get("open_sample_us") for r in runs])}
    fails = []
    # The daemon's memory per listed object: its VmRSS less that of a
    # mount of one certificate at the same point, over the n - 1 others
    base = sc["base"]
    for k in ("mount_kib", "ls_kib"):
        out["rss_" + k] = median([r["rss"][k] for r in runs])
        out["base_" + k] = base[k]
        if n > 1:
            per = (out["rss_" + k] - base[k]) * 1024 / (n - 1)
            out["per_object_" + k[:-4]] = per
            if per > SCALE_BYTES_PER_OBJECT:
                fails.append("scale N=%d: %.0f B of daemon memory per listed object after %s "
                             "(target ≤ %d B)" % (n, per, "the mount" if k == "mount_kib"
                                                  else "`ls -l`", SCALE_BYTES_PER_OBJECT))
    for i, r in enumerate(runs, 1):
        q, lq = r["mount_requests"], r["ls_requests"]
        got = (r["client"]["items"], r["listed"], q["token"], q["pages"], q["vault"],
               lq["vault"])
        want = (n, n, 1, mn["pages"], mn["pages"], mn["pages"])
        if got != want:
            fails.append("scale N=%d run %d: client listed %d, ls -l %d, mount %d token + %d "
                         "pages (%d vault requests), %d vault requests after ls -l; want "
                         "%d, %d, %d + %d (%d), %d" % ((n, i) + got + want))
    cached = [r["cached"] for r in runs if r.get("cached")]
    if cached:
        out["cached_per_cert"] = median([c["per_cert_bytes"] for c in cached])
        out["cached_content"] = cached[0]["content_bytes"]
        out["cached_overhead"] = median([c["overhead_bytes"] for c in cached])
        if out["cached_overhead"] > CACHED_OVERHEAD_BYTES:
            fails.append("scale N=%d: %.0f B of daemon memory per cached certificate, %.0f B "
                         "beyond its content (target ≤ %d B)"
                         % (n, out["cached_per_cert"], out["cached_overhead"],
                            CACHED_OVERHEAD_BYTES))
        for i, c in enumerate(cached, 1):
            if c["files"] != n or c["read_errors"]:
                fails.append("scale N=%d run %d: read %d cert.pem with %d errors; want %d, 0"
                             % (n, i, c["files"], c["read_errors"], n))
    ratio = out["mount_s"] / out["client_s"]
    out["mount_ratio"] = ratio
    if ratio > 1.2:
        fails.append("scale N=%d: mount %.2f s = %.2f× the client's token + listing (target "
                     "≤ 1.2×)" % (n, out["mount_s"], ratio))
    if out["ls_warm_s"] >= 2:
        fails.append("scale N=%d: ls -l certificates/ warm %.2f s (target < 2 s)"
                     % (n, out["ls_warm_s"]))
    if out["open_us"] is not None and out["open_sample_us"]:
        out["open_ratio"] = out["open_us"] / out["open_sample_us"]
        if out["open_ratio"] > 1.5:
            fails.append("scale N=%d: open+read+close %.2f× that on a mount of 100 (target "
                         "≤ 1.5×)" % (n, out["open_ratio"]))
    out["failures"] = fails
    return out


def scale_section(sc, targets):
    """The scale job's report; its checks go to targets."""
    n, mn = sc["n"], sc["minimum"]
    L = ["### Scale: %d certificates (%d run%s)" % (n, sc["runs"], "s" if sc["runs"] > 1
                                                      else ""), "",
         "A vault of %d certificates sharing one leaf (`--bulk-one-leaf`). The plain client "
         "(`list-baseline.mjs`: Node's fetch, one kept-alive connection) takes the token and "
         "lists the vault, %d pages; kvfs's mount is timed from exec to the mount (it "
         "authenticates and lists before it mounts)." % (n, mn["pages"]), "",
         "| measure | time | target |", "|---|---|---|",
         "| client: token + listing | %s (token %s, listing %s) | – |"
         % (fmt_s(sc["client_s"]), fmt_s(sc["client_token_s"]), fmt_s(sc["client_list_s"])),
         "| kvfs: mount (start-up, token, listing) | %s = %s the client | ≤ 1.2× |"
         % (fmt_s(sc["mount_s"]), fmt_ratio(sc["mount_ratio"])),
         "| `ls -l certificates/`, cold | %s | – |" % fmt_s(sc["ls_cold_s"]),
         "| `ls -l certificates/`, warm | %s | < 2 s |" % fmt_s(sc["ls_warm_s"])]
    if sc.get("open_ratio") is not None:
        L.append("| open+read+close of 100 `cert.pem`, warm: with %d objects / with 100 "
                 "(`include=%s`) | %.1f µs / %.1f µs = %s | ≤ 1.5× |"
                 % (n, SAMPLE_GLOB, sc["open_us"], sc["open_sample_us"],
                    fmt_ratio(sc["open_ratio"])))
    if sc.get("per_object_ls") is not None:
        L.append("| daemon memory per listed object, after the mount / after both `ls -l` "
                 "(VmRSS %.1f / %.1f MiB, less %.1f / %.1f MiB with one object, ÷ %d) "
                 "| %.0f B / %.0f B | ≤ %d B |"
                 % (sc["rss_mount_kib"] / 1024, sc["rss_ls_kib"] / 1024,
                    sc["base_mount_kib"] / 1024, sc["base_ls_kib"] / 1024, n - 1,
                    sc["per_object_mount"], sc["per_object_ls"], SCALE_BYTES_PER_OBJECT))
    if sc.get("cached_per_cert") is not None:
        L.append("| daemon memory per cached certificate, once every `cert.pem` was read "
                 "(one reader) | %.0f B, %.0f B beyond its %d B of content | ≤ content + "
                 "%d B |" % (sc["cached_per_cert"], sc["cached_overhead"],
                             sc["cached_content"], CACHED_OVERHEAD_BYTES))
    L.append("")
    for f in sc["failures"]:
        L.append("- **FAILED**: %s" % f)
    if sc["failures"]:
        L.append("")
    targets.append(("N=%d: mount ≤ 1.2× token + listing, `ls -l` warm < 2 s, open as with "
                    "100 objects, ≤ %d B per listed object, ≤ content + %d B per cached "
                    "certificate, requests exact (the run fails otherwise)"
                    % (n, SCALE_BYTES_PER_OBJECT, CACHED_OVERHEAD_BYTES),
                    not sc["failures"], "%s; %s; %s; %s; %s" % (
                        fmt_ratio(sc["mount_ratio"]), fmt_s(sc["ls_warm_s"]),
                        fmt_ratio(sc["open_ratio"]) if sc.get("open_ratio") else "–",
                        "%.0f B" % sc["per_object_ls"] if sc.get("per_object_ls") is not None
                        else "–",
                        "%.0f B" % sc["cached_per_cert"] if sc.get("cached_per_cert") is not None
                        else "–")))
    return L


def cold_table(cl, mn, labels, gets):
    """The cold table of the clients cl against the minimum mn; gets names
    the per-object requests ("bundles", "GETs")."""
    base = cl.get("kvfs_seq", {}).get("wall_s")
    L = ["| client | wall | × kvfs seq | token+pages+%s | ÷ minimum "
         "| discovery | 401 challenge | fake CPU | kvfs CPU | vault connections |" % gets,
         "|---|---|---|---|---|---|---|---|---|---|"]
    for k, c in cl.items():
        label = labels[k]
        if k == "curl":
            label = label % ("%d run" % c["runs"] + ("s" if c["runs"] > 1 else ""))
        rq = c["requests"]
        L.append("| %s | %s | %s | %d (%d + %d + %d) | %s | %d | %d | %s | %s | %s |" % (
            label, fmt_s(c["wall_s"]),
            fmt_ratio(c["wall_s"] / base) if base else "–",
            rq["counted"], rq["token"], rq["pages"], rq["bundles"],
            "%.3f" % (rq["counted"] / mn["total"]), rq["discovery"], rq["challenge"],
            fmt_s(c["fake_cpu_s"]), fmt_s(c["kvfs_cpu_s"]) if k.startswith("kvfs")
            else "–", "%d" % c["connections"] if c["connections"] is not None
            else "–"))
    L.append("")
    return L


def warm_section(w, what, read_label, stat_label):
    """The warm figures against tmpfs, and the FUSE floor under them:
    (lines, read ratio, stat ratio)."""
    rr, sr = w["kvfs_read_us"] / w["tmpfs_read_us"], w["kvfs_stat_us"] / w["tmpfs_stat_us"]
    L = ["Warm (right after the cold read; per operation, over every %s):" % what, "",
         "| operation | kvfs | tmpfs | ratio | target |", "|---|---|---|---|---|",
         "| %s | %.1f µs | %.1f µs | %s | ≤ 1.5× |"
         % (read_label, w["kvfs_read_us"], w["tmpfs_read_us"], fmt_ratio(rr)),
         "| %s | %.2f µs | %.2f µs | %s | ≤ 1.5× |"
         % (stat_label, w["kvfs_stat_us"], w["tmpfs_stat_us"], fmt_ratio(sr)), "",
         "Vault requests during the warm passes: %d." % w["vault_requests"], ""]
    if w["nullfs_read_us"] is not None and w["nullfs_noopen_read_us"] is not None:
        L.extend(fuse_floor(w))
    return L, rr, sr


def secrets_section(sec, labels, targets):
    """The secrets job's report; its checks go to targets."""
    n, mn = sec["n"], sec["minimum"]
    L = ["### %d secrets, `collections=secrets` (%d run%s)"
         % (n, sec["runs"], "s" if sec["runs"] > 1 else ""), "",
         "Cold: mount with `collections=secrets`, list `secrets/`, read every "
         "`secrets/<name>` (values of %d to %d bytes). Requests counted against the minimum "
         "= token + list pages + GETs (minimum %d = 1 + %d + %d); OpenID discovery is shown "
         "apart." % (BULK_SECRET_MIN, BULK_SECRET_MAX, mn["total"], mn["pages"],
                     mn["bundles"]), ""]
    L.extend(cold_table(sec["clients"], mn, labels, "GETs"))
    ls = sec["ls"]
    q = ls["requests"]
    L.append("`ls -l secrets/` on a fresh mount, from exec: %d token, %d list pages, %d GETs "
             "(minimum 1 + %d pages, no GET), %d discovery; it showed %d secrets."
             % (q["token"], q["pages"], q["bundles"], mn["pages"], q["discovery"],
                ls["listed"]))
    L.append("")
    if sec["warm"]:
        L.extend(warm_section(sec["warm"], "secret", "open+read+close secrets/<name>",
                              "stat of secrets/<name>")[0])
    fails = sec["failures"]
    for f in fails:
        L.append("- **FAILED**: %s" % f)
    if fails:
        L.append("")
    targets.append(("N=%d secrets: listing costs ⌈N/25⌉ = %d pages and reading each one GET, "
                    "exactly (every run and pool; `ls -l` no GET)" % (n, mn["pages"]),
                    not fails, "%s vs %d; ls -l %d pages + %d GETs" % (
                        "/".join("%d" % c["requests"]["counted"]
                                 for c in sec["clients"].values()),
                        mn["total"], q["pages"], q["bundles"])))
    return L


def summarize(results):
    """Medians over the runs of each vault size, and the target checks."""
    out = []
    kvfs_keys = ("kvfs_seq",) + tuple("kvfs_par%d" % t for t in results["args"]["threads"])
    for size in results["sizes"]:
        n, runs = size["n"], size["runs"]
        s = {"n": n, "minimum": size["minimum"], "runs": len(runs),
             "clients": summarize_clients(runs, kvfs_keys + ("curl", "sdk_seq", "sdk_conc"))}
        w = summarize_warm(runs)
        if w:
            s["warm"] = w
        if any("memory" in r.get("kvfs_seq", {}) for r in runs):
            s["memory"] = {f: median([r["kvfs_seq"]["memory"][f] for r in runs])
                           for f in ("rss_listed_kib", "rss_read_kib", "hwm_read_kib",
                                     "per_cert_bytes", "content_bytes", "overhead_bytes")}
        if any("readers" in r for r in runs):
            s["readers"] = {mode: {f: median([r["readers"][mode][f] for r in runs])
                                   for f in ("cold_first_round_s", "cold_bundles",
                                             "expected_bundles", "ops_per_s", "cold_errors")}
                            for mode in ("same", "diff")}
        if size.get("scale"):
            s["scale"] = summarize_scale(size["scale"])
        sec = size.get("secrets")
        if sec:
            sruns = sec["runs"]
            s["secrets"] = {
                "n": sec["n"], "minimum": sec["minimum"], "runs": len(sruns),
                "clients": summarize_clients(sruns, kvfs_keys),
                "warm": summarize_warm(sruns),
                "ls": {"listed": median([r["ls"]["listed"] for r in sruns]),
                       "requests": {f: median([r["ls"]["requests"][f] for r in sruns])
                                    for f in ("discovery", "token", "pages", "bundles",
                                              "vault")}},
                "failures": secrets_failures(sec),
            }
        out.append(s)
    return out


def markdown(results):
    a = results["args"]
    m = results["machine"]
    L = []
    L.append("## kvfs benchmark results")
    L.append("")
    L.append("Machine: %d cores (%s), %.1f GiB, Linux %s, Debian %s; load average at start %s. "
             "Medians of the runs shown; everything (fake Azure, clients, kvfs) shares "
             "these cores." % (m["nproc"], m["cpu"] or "?", m["mem_gib"], m["kernel"],
                               m["debian"], " ".join(m["loadavg_at_start"])))
    L.append("")
    targets = []
    labels = {"kvfs_seq": "kvfs, 1 reader", "curl": "curl + jq loop (%s)",
              "sdk_seq": "JS SDK, sequential",
              "sdk_conc": "JS SDK, %d concurrent" % a["sdk_concurrency"]}
    for t in a["threads"]:
        labels["kvfs_par%d" % t] = "kvfs, %d readers" % t
    for s in results["summary"]:
        n, mn, cl = s["n"], s["minimum"], s["clients"]
        if s.get("secrets"):
            L.extend(secrets_section(s["secrets"], labels, targets))
        if s.get("scale"):
            L.extend(scale_section(s["scale"], targets))
        if not s["runs"]:
            continue
        L.append("### %d certificates (%d run%s)" % (n, s["runs"], "s" if s["runs"] > 1 else ""))
        L.append("")
        if cl:
            L.append("Cold: mount (or start), list the vault, read every certificate's PEM. "
                     "Requests counted against the minimum = token + list pages + bundles "
                     "(minimum %d = 1 + %d + %d); OpenID discovery and the SDK's "
                     "unauthenticated 401 challenge are shown apart."
                     % (mn["total"], mn["pages"], mn["bundles"]))
            L.append("")
            L.extend(cold_table(cl, mn, labels, "bundles"))
            kv = [k for k in cl if k.startswith("kvfs")]
            if kv:
                exact = all(cl[k]["requests"]["counted"] == mn["total"]
                            and cl[k]["requests"]["vault"] == mn["pages"] + mn["bundles"]
                            for k in kv)
                targets.append(("N=%d: kvfs vault requests = minimum exactly" % n, exact,
                                "%s vs %d" % ("/".join("%d" % cl[k]["requests"]["counted"]
                                                       for k in kv), mn["total"])))
                best = min(cl[k]["wall_s"] for k in kv)
                for b in ("curl", "sdk_seq", "sdk_conc"):
                    if b in cl:
                        targets.append((
                            "N=%d: cold wall below %s" % (n, labels[b].split(" (")[0]),
                            cl["kvfs_seq"]["wall_s"] < cl[b]["wall_s"] if "kvfs_seq" in cl
                            else best < cl[b]["wall_s"],
                            "kvfs 1 reader %s, best kvfs %s, baseline %s" % (
                                fmt_s(cl.get("kvfs_seq", {}).get("wall_s")), fmt_s(best),
                                fmt_s(cl[b]["wall_s"]))))
        w = s.get("warm")
        if w:
            lines, rr, sr = warm_section(w, "certificate", "open+read+close cert.pem",
                                         "stat of a certificate directory")
            L.extend(lines)
            targets.append(("N=%d: warm open+read+close ≤ 1.5× tmpfs" % n, rr <= 1.5,
                            "%.2f×" % rr))
            targets.append(("N=%d: warm stat ≤ 1.5× tmpfs" % n, sr <= 1.5, "%.2f×" % sr))
            if w.get("kcache_read_us") is not None:
                kf = kernel_cache_failures(n, w)
                targets.append(("N=%d: `kernel_cache` warm open+read+close ≤ 1.5× tmpfs, "
                                "requests = the default mode's (the run fails otherwise)" % n,
                                not kf, "%.2f×; %d vs %d requests" % (
                                    w["kcache_read_us"] / w["tmpfs_read_us"],
                                    w["kcache_cold_counted"],
                                    cl.get("kvfs_seq", {}).get("requests", {}).get("counted", 0)
                                    if cl else 0)))
        rd = s.get("readers")
        if rd:
            L.append("%d concurrent readers, each on a fresh mount: the first round is cold "
                     "(vault requests counted), then %d open+read+close each, warm:"
                     % (a["readers"], a["reader_iters"]))
            L.append("")
            L.append("| readers on | cold round | bundles fetched (expected) | warm kvfs "
                     "| warm tmpfs | ratio |")
            L.append("|---|---|---|---|---|---|")
            for mode, label in (("same", "one certificate"), ("diff", "64 certificates")):
                r = rd[mode]
                t = w["tmpfs_readers"][mode] if w else None
                L.append("| %s | %s | %d (%d) | %.0f /s | %s | %s |" % (
                    label, fmt_s(r["cold_first_round_s"]), r["cold_bundles"],
                    r["expected_bundles"], r["ops_per_s"],
                    "%.0f /s" % t if t else "–", fmt_ratio(t / r["ops_per_s"]) if t else "–"))
                targets.append(("N=%d: %d readers on %s cost %d request(s)"
                                % (n, a["readers"], label, r["expected_bundles"]),
                                r["cold_bundles"] == r["expected_bundles"]
                                and not r["cold_errors"],
                                "%d" % r["cold_bundles"]))
            L.append("")
        mem = s.get("memory")
        if mem:
            L.append("Daemon memory (VmRSS after mount + list → after reading every "
                     "certificate): %.1f → %.1f MiB (peak %.1f MiB); %.0f bytes per cached "
                     "certificate, of which %d are its files' content (cert.pem + cert.der): "
                     "**%.0f bytes of overhead per certificate** (target ≤ %d)."
                     % (mem["rss_listed_kib"] / 1024, mem["rss_read_kib"] / 1024,
                        mem["hwm_read_kib"] / 1024, mem["per_cert_bytes"],
                        mem["content_bytes"], mem["overhead_bytes"],
                        CACHED_OVERHEAD_BYTES))
            L.append("")
            targets.append(("N=%d: daemon memory per cached certificate ≤ its content "
                            "+ %d B" % (n, CACHED_OVERHEAD_BYTES),
                            mem["overhead_bytes"] <= CACHED_OVERHEAD_BYTES,
                            "%.0f B (%.0f B of content)"
                            % (mem["per_cert_bytes"], mem["content_bytes"])))
    f = results.get("fleet")
    if f:
        b = f["budget"]
        L.append("### Fleet: %d mounts, one vault of %d certificates, budget %d requests "
                 "per %g s" % (f["mounts"], f["certificates"], b["requests"], b["window_s"]))
        L.append("")
        L.append("Each round starts once the previous round's window has passed. "
                 "A read round: every mount lists the vault and reads the same %d cert.pem "
                 "files, all mounts at once." % f["files_per_round"])
        L.append("")
        L.append("| round | vault requests | 429 | served | list pages | bundles | login "
                 "| read errors | failed mounts | time |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        after_first = True
        for i, r in enumerate(f["rounds"]):
            kind = r["kind"]
            if r.get("hup_supported") is False:
                kind += " — **not supported**: no request after SIGHUP"
            L.append("| %d. %s | %d | %d | %d | %d | %d | %d | %s | %s | %s |" % (
                i, kind, r["vault_requests"], r["throttled"], r["served"], r["pages"],
                r["bundles"], r["login_requests"], r.get("read_errors", "–"),
                r.get("failed_mounts", "–"), fmt_s(r["seconds"])))
            if i >= 2 and r["throttled"]:
                after_first = False
        L.append("")
        L.append("Daemon VmRSS per mount: %.1f MiB." % ((f.get("rss_kib_per_mount") or 0) / 1024))
        L.append("")
        hup = [r for r in f["rounds"] if "hup_supported" in r]
        note = ""
        if hup and not all(r["hup_supported"] for r in hup):
            note = " (revalidation rounds not measurable: SIGHUP unsupported)"
        targets.append(("fleet never exceeds the budget after the first round" + note,
                        after_first, "429s after round 1: %d" % sum(
                            r["throttled"] for r in f["rounds"][2:])))
    if targets:
        L.append("### Targets")
        L.append("")
        L.append("| target | result | measured |")
        L.append("|---|---|---|")
        for name, ok, detail in targets:
            L.append("| %s | %s | %s |" % (name, mark(ok), detail))
        L.append("")
    return "\n".join(L) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(description="kvfs benchmark")
    p.add_argument("--certs", default="1000",
                   help="vault sizes, comma-separated (default 1000): N certificates, and N "
                        "secrets for the secrets job")
    p.add_argument("--runs", type=int, default=3, help="runs per vault size (default 3)")
    p.add_argument("--curl-runs", type=int, default=1,
                   help="runs of the curl loop per size (default 1: ~50 ms a certificate)")
    p.add_argument("--threads", default="8,16",
                   help="parallel reader pools for kvfs cold reads (default 8,16)")
    p.add_argument("--sdk-concurrency", type=int, default=8)
    p.add_argument("--readers", type=int, default=64)
    p.add_argument("--reader-iters", type=int, default=200)
    p.add_argument("--fleet-mounts", type=int, default=50)
    p.add_argument("--fleet-certs", type=int, default=100)
    p.add_argument("--fleet-files", type=int, default=10)
    p.add_argument("--fleet-budget", default="250/10",
                   help="vault budget REQUESTS/SECONDS for the fleet (default 250/10)")
    p.add_argument("--fleet-rounds", type=int, default=3)
    p.add_argument("--fleet-hup-rounds", type=int, default=2)
    p.add_argument("--fleet-hup-wait", type=float, default=5.0)
    p.add_argument("--only", default=",".join(JOBS),
                   help="jobs to run, comma-separated, of: " + ",".join(JOBS))
    p.add_argument("--out", default=os.path.join(REPO, "build", "bench"),
                   help="directory for results.json and results.md (default build/bench)")
    a = p.parse_args(argv)
    a.certs = [int(x) for x in a.certs.split(",") if x]
    a.threads = [int(x) for x in a.threads.split(",") if x]
    a.only = set(x for x in a.only.split(",") if x)
    unknown = a.only - set(JOBS)
    if unknown:
        p.error("unknown jobs: %s" % ", ".join(sorted(unknown)))
    if "readers" in a.only:
        a.only.add("warm")   # the tmpfs side of the readers comes with warm
    r, _, w = a.fleet_budget.partition("/")
    a.fleet_budget = (int(r), float(w or 10))
    return a


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("bench: run as root (FUSE and tmpfs mounts)")

    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)

    bench = Bench(args)
    results = {"args": {k: (sorted(v) if isinstance(v, set) else v)
                        for k, v in vars(args).items()},
               "machine": machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                              time.gmtime()),
               "sizes": []}
    try:
        bench.prepare()
        results["kvfs"] = bench.kvfs
        results["kvfs_commit"] = subprocess.run(
            ["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True,
            text=True).stdout.strip()
        for n in args.certs:
            if args.only & (CERT_JOBS | {"secrets", "scale"}):
                results["sizes"].append(bench.size(n))
        if "fleet" in args.only:
            results["fleet"] = bench.fleet()
    finally:
        bench.cleanup()
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    results["summary"] = summarize(results)
    text = markdown(results)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    log("results in %s/results.{md,json}" % args.out)
    failures = [f for s in results["summary"] for f in (s.get("secrets") or {}).get("failures", ())]
    for f in failures:
        log("FAILED: secrets job: %s" % f)
    if failures:
        log("FAILED: kvfs's requests for secrets differ from the minimum (above)")
    gates = [f for s in results["summary"] for f in kernel_cache_failures(s["n"], s.get("warm"))]
    gates += [f for s in results["summary"] for f in (s.get("scale") or {}).get("failures", ())]
    for f in gates:
        log("FAILED: %s" % f)
    return 1 if failures or gates else 0


if __name__ == "__main__":
    sys.exit(main())
