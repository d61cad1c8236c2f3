#!/usr/bin/env bash
# The Debian package, end to end: build it (deploy/build-deb.sh: one release build), install
# it with `dpkg -i` into a clean root, run the installed binary as the installed user with the
# installed config to /health 200, then `dpkg -r` (data kept) and `dpkg -P` (data and user
# gone).
#
# The clean root is a copy-on-write overlay of this machine's / in a private mount namespace
# (nothing of the install reaches the real system); maintainer scripts run in it for real
# (adduser, deb-systemd-helper). systemd is not PID 1 there, so the unit is enabled but not
# started: the binary is started by hand with the unit's user, working directory and config.
# Needs root (mount, chroot); elsewhere it only builds the package and checks its contents.
#
# Usage: tests/package.sh [DEB]   (with DEB, skips the build)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> package: %s\n' "$*"; }
fail() {
    printf '==> package: FAILED: %s\n' "$*" >&2
    exit 1
}

deb=${1:-}
if [ -z "$deb" ]; then
    command -v cargo-deb >/dev/null || cargo install cargo-deb --locked
    deb=$(deploy/build-deb.sh | tail -n 1)
fi
[ -f "$deb" ] || fail "no package at '$deb'"
say "$deb: $(du -k "$deb" | cut -f1) KiB"

# What the package carries, and its conffile.
contents=$(dpkg-deb -c "$deb")
for path in ./usr/bin/opswatch ./etc/opswatch/opswatch.toml ./usr/lib/systemd/system/opswatch.service \
    ./usr/share/man/man1/opswatch.1.gz ./usr/share/bash-completion/completions/opswatch \
    ./usr/share/zsh/vendor-completions/_opswatch ./usr/share/fish/vendor_completions.d/opswatch.fish \
    ./usr/share/doc/opswatch/opswatch.example.toml; do
    grep -q " $path\$" <<<"$contents" || fail "$path is not in the package"
done
dpkg-deb -I "$deb" conffiles | grep -qx /etc/opswatch/opswatch.toml ||
    fail "/etc/opswatch/opswatch.toml is not a conffile"

if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
    say "not root: skipping the install into a clean root"
    exit 0
fi

work=$(mktemp -d)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
mkdir -p "$work"/{upper,work,root}
cp "$deb" "$work/opswatch.deb"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# Everything below runs in a private mount namespace: the overlay and the chroot's /proc,
# /dev and /sys vanish with it.
unshare -m --propagation private bash -euo pipefail -s "$work" "$port" <<'INNER'
work=$1 port=$2
root=$work/root
say() { printf '==> package: %s\n' "$*"; }
fail() { printf '==> package: FAILED: %s\n' "$*" >&2; exit 1; }
in_root() { chroot "$root" "$@"; }

mount -t overlay overlay -o "lowerdir=/,upperdir=$work/upper,workdir=$work/work" "$root"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
mount -t tmpfs tmpfs "$root/run"
mount -t tmpfs tmpfs "$root/tmp"
in_root dpkg -s opswatch >/dev/null 2>&1 && in_root dpkg -P opswatch >/dev/null
in_root getent passwd opswatch >/dev/null && fail "the root already has an opswatch user"

say "dpkg -i"
cp "$work/opswatch.deb" "$root/tmp/opswatch.deb"
in_root dpkg -i /tmp/opswatch.deb >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -i"; }
in_root getent passwd opswatch >/dev/null || fail "no opswatch user after install"
[ "$(in_root stat -c %U:%G:%a /var/lib/opswatch)" = opswatch:opswatch:750 ] ||
    fail "/var/lib/opswatch: $(in_root stat -c %U:%G:%a /var/lib/opswatch)"
[ "$(in_root stat -c %U:%G:%a /etc/opswatch/opswatch.toml)" = root:opswatch:640 ] ||
    fail "/etc/opswatch/opswatch.toml: $(in_root stat -c %U:%G:%a /etc/opswatch/opswatch.toml)"
[ -L "$root/etc/systemd/system/multi-user.target.wants/opswatch.service" ] ||
    fail "the unit is not enabled"
in_root opswatch --version
in_root systemd-analyze verify /usr/lib/systemd/system/opswatch.service ||
    fail "systemd-analyze verify"

# The installed config, as installed but on a free port (this machine may already use 7070).
sed -i "s/^listen = .*/listen = \"127.0.0.1:$port\"/" "$root/etc/opswatch/opswatch.toml"
in_root runuser -u opswatch -- env OPSWATCH_CONFIG=/etc/opswatch/opswatch.toml \
    opswatch config check >/dev/null || fail "config check as the opswatch user"

say "start the installed service (User=opswatch, WorkingDirectory=/var/lib/opswatch)"
start=$(date +%s%N)
chroot "$root" runuser -u opswatch -- env -C /var/lib/opswatch \
    OPSWATCH_CONFIG=/etc/opswatch/opswatch.toml /usr/bin/opswatch serve >"$work/serve.log" 2>&1 &
pid=$!
code=000
for _ in $(seq 1 300); do
    code=$(curl -s -o "$work/health.json" -w '%{http_code}' "http://127.0.0.1:$port/health" || true)
    [ "$code" = 200 ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
done
took_ms=$((($(date +%s%N) - start) / 1000000))
kill -TERM "$pid" 2>/dev/null || true
wait "$pid" || true
[ "$code" = 200 ] || { cat "$work/serve.log"; fail "/health answered $code"; }
say "/health 200 after ${took_ms} ms (cold start of the installed binary): $(cat "$work/health.json")"
[ -s "$root/var/lib/opswatch/opswatch.db" ] || fail "no SQLite store in /var/lib/opswatch"

say "dpkg -r keeps the data and the config"
in_root dpkg -r opswatch >>"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -r"; }
[ -s "$root/var/lib/opswatch/opswatch.db" ] || fail "dpkg -r removed the data"
[ -f "$root/etc/opswatch/opswatch.toml" ] || fail "dpkg -r removed the conffile"
[ ! -e "$root/usr/bin/opswatch" ] || fail "dpkg -r left the binary"

say "dpkg -P removes the data, the config and the user"
in_root dpkg -P opswatch >>"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; fail "dpkg -P"; }
[ ! -e "$root/var/lib/opswatch" ] || fail "dpkg -P left /var/lib/opswatch"
[ ! -e "$root/etc/opswatch/opswatch.toml" ] || fail "dpkg -P left the conffile"
! in_root getent passwd opswatch >/dev/null || fail "dpkg -P left the opswatch user"
INNER
say "ok"
