#!/usr/bin/env bash
# The README's first command: install what is needed, build, start the fake
# Azure with its demo vault, mount it with kvfs and show it.  The mount and
# the fake stay up so that you can look around; `tests/demo.sh stop` ends
# both.
set -euo pipefail
cd "$(dirname "$0")/.."

# The demo's places; a test of the stop path moves them.
state=${KVFS_DEMO_STATE:-/run/kvfs-demo}
mnt=${KVFS_DEMO_MNT:-/mnt/kvfs-demo}

# Whether pid is a process that has not exited: a zombie has, once the
# last of its threads is gone.
alive() {
	local s tasks
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[ "${s%% *}" != Z ] && return 0
	tasks=(/proc/"$1"/task/*)
	[ ${#tasks[@]} -gt 1 ]
}

# Unmount, then end the fake whatever the unmount did and wait until it
# has exited.  Fails, saying what to do, when the mount stays.
stop() {
	local busy=0 pid
	if grep -qs " $mnt fuse" /proc/mounts; then
		fusermount3 -u "$mnt" || busy=1
	fi
	if [ -f "$state/fake.pid" ]; then
		pid=$(cat "$state/fake.pid")
		if grep -qs fakeazure "/proc/$pid/cmdline"; then
			kill "$pid" 2>/dev/null || true
			for _ in $(seq 100); do
				alive "$pid" || break
				sleep 0.1
			done
			if alive "$pid"; then
				kill -KILL "$pid" 2>/dev/null || true
				while alive "$pid"; do sleep 0.1; done
			fi
		fi
		rm -f "$state/fake.pid"
	fi
	if [ "$busy" = 1 ]; then
		echo "demo: fake Azure ended, but $mnt is still mounted: close files under $mnt, or fusermount3 -uz $mnt" >&2
		return 1
	fi
}

if [ "${1:-}" = stop ]; then
	stop || exit 1
	echo "demo stopped: $mnt unmounted, fake Azure ended"
	exit 0
fi

tests/install-deps
[ -d build ] || meson setup build
ninja -C build

stop
mkdir -p "$state" "$mnt"
rm -f "$state/info.json"
setsid /usr/bin/python3 tests/fakeazure/fakeazure.py --state-dir "$state" \
	>"$state/fake.log" 2>&1 </dev/null &
echo $! >"$state/fake.pid"
for _ in $(seq 300); do
	[ -f "$state/info.json" ] && break
	sleep 0.1
done
[ -f "$state/info.json" ] || { cat "$state/fake.log"; exit 1; }

info() {
	/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$state/info.json" "$1"
}

opts="auth=secret,tenant=$(info tenant),client_id=$(info apps.secret.client_id)"
opts="$opts,secret_file=$(info apps.secret.secret_file)"
opts="$opts,authority=$(info authority),ca_file=$(info ca_file),resource=$(info resource)"

set -x
build/kvfs -o "$opts" "$(info vault_url)" "$mnt"
ls "$mnt/certificates" | head -n 12
ls -l "$mnt/certificates/www"
openssl x509 -in "$mnt/certificates/www/cert.pem" -noout -subject -enddate
{ set +x; } 2>/dev/null
echo
echo "kvfs is mounted on $mnt (fake Azure: $state/info.json)."
echo "Options: build/kvfs --help; the manual: man -l doc/kvfs.8"
echo "Unmount and stop the fake with: tests/demo.sh stop"
