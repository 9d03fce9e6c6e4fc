#!/usr/bin/env bash
# The Debian package as a camera box gets it: builds the .deb with cpack, makes a fresh minimal Debian 12
# root with debootstrap, installs the .deb there with `apt-get install ./vigil_*.deb` (so apt pulls the
# dependencies dpkg-shlibdeps computed), then checks the files, the vigil system user, the state folder,
# the systemd units, that vigil runs as that user, that camera configs are validated, and that purge
# removes everything.
#
#   bash tests/package_test.sh BUILD_DIR       (CTest: package_install, label package)
#
# Needs root (debootstrap, chroot, mounts) and debootstrap; exits 77 (skipped) without them. The mounts
# live in a private mount namespace (unshare --mount), so none outlives the test. Cached under
# BUILD_DIR/package-test: the debootstrapped root (a tarball) and the .debs apt downloaded, so a rerun
# needs the network only for `apt-get update`. VIGIL_DEBIAN_MIRROR overrides the mirror taken from this
# machine's apt sources.
set -euo pipefail

if [ "${1:-}" = --in-namespace ]; then
  in_namespace=1
  shift
fi
build=$(cd "${1:?usage: package_test.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
cache="$build/package-test"
suite=bookworm

say() { echo "package_test: $*"; }
fail() {
  echo "package_test: FAIL: $*" >&2
  exit 1
}
elapsed() { echo "$((SECONDS - $1)) s"; }

# ------------------------------------------------------------------------------------------------------
# Inside the private mount namespace: everything that mounts or chroots.
if [ -n "${in_namespace:-}" ]; then
  root=$2
  deb=$3
  run() { chroot "$root" "$@"; }
  cleanup() {
    for m in var/cache/apt/archives dev/pts dev proc; do
      mountpoint -q "$root/$m" && umount -l "$root/$m"
    done
    return 0
  }
  trap cleanup EXIT

  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  mkdir -p "$cache/apt-archives/partial" "$root/var/cache/apt/archives"
  mount --bind "$cache/apt-archives" "$root/var/cache/apt/archives"

  # The host's apt sources (and keys, and Acquire:: settings such as proxies); DNS.
  rm -f "$root/etc/apt/sources.list"
  rm -f "$root"/etc/apt/sources.list.d/*
  [ -f /etc/apt/sources.list ] && cp /etc/apt/sources.list "$root/etc/apt/"
  for f in /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] && cp "$f" "$root/etc/apt/sources.list.d/"
  done
  for d in /etc/apt/trusted.gpg.d /etc/apt/keyrings /usr/share/keyrings; do
    [ -d "$d" ] && mkdir -p "$root$d" && cp -n "$d"/* "$root$d/" 2>/dev/null || true
  done
  for f in /etc/apt/apt.conf.d/*; do
    if [ -f "$f" ] && grep -q '^[[:space:]]*Acquire::' "$f" && ! grep -q 'Invoke' "$f"; then
      cp "$f" "$root/etc/apt/apt.conf.d/"
    fi
  done
  cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
  # Keep what apt downloads for the next run (the minimal root's docker-clean would delete it).
  rm -f "$root/etc/apt/apt.conf.d/docker-clean"
  echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$root/etc/apt/apt.conf.d/90vigil-keep"

  t=$SECONDS
  run apt-get update -qq || fail "apt-get update in the Debian root failed (is the mirror reachable?)"
  cp "$deb" "$root/tmp/"
  debname=$(basename "$deb")
  DEBIAN_FRONTEND=noninteractive run apt-get install -y -qq --no-install-recommends "/tmp/$debname" \
    >"$cache/apt-install.log" 2>&1 || {
    tail -30 "$cache/apt-install.log"
    fail "apt-get install ./$debname failed (log: $cache/apt-install.log)"
  }
  say "apt-get install ./$debname with its dependencies: $(elapsed $t) ($(grep -c '^Setting up' "$cache/apt-install.log") packages set up)"

  # Files.
  web=""
  [ -f "$src/web/index.html" ] && web=usr/share/vigil/web/index.html
  for f in usr/bin/vigil usr/share/vigil/models/detector.onnx usr/share/vigil/models/detector.json \
    usr/share/vigil/models/reader.onnx usr/share/vigil/models/reader.json usr/share/vigil/plate_formats.json \
    usr/share/vigil/samples/ro-dashcam-close.jpg lib/systemd/system/vigil-serve.service \
    lib/systemd/system/vigil-watch@.service etc/vigil/serve.conf etc/vigil/cameras/example.json \
    usr/share/doc/vigil/README.md $web; do
    [ -f "$root/$f" ] || fail "the package did not install /$f"
  done
  conffiles=$(run dpkg-query -W -f='${Conffiles}' vigil)
  for f in /etc/vigil/serve.conf /etc/vigil/cameras/example.json; do
    echo "$conffiles" | grep -q " $f " || fail "$f is not a conffile: $conffiles"
  done
  depends=$(run dpkg-query -W -f='${Depends}' vigil)
  echo "$depends" | grep -q libopencv || fail "Depends has no OpenCV library (dpkg-shlibdeps?): $depends"

  # The system user: no login shell, a system uid, owner of /var/lib/vigil; /etc/vigil/cameras private.
  pw=$(run getent passwd vigil) || fail "no vigil user"
  IFS=: read -r _ _ uid gid _ home shell <<<"$pw"
  sys_max=$(awk '$1 == "SYS_UID_MAX" {print $2}' "$root/etc/login.defs")
  [ "$uid" -lt "${sys_max:-1000}" ] || fail "vigil is not a system user (uid $uid): $pw"
  case "$shell" in */nologin | /bin/false) ;; *) fail "vigil has a login shell: $pw" ;; esac
  [ "$home" = /var/lib/vigil ] || fail "vigil's home is $home, expected /var/lib/vigil"
  [ "$(run getent group vigil | cut -d: -f3)" = "$gid" ] || fail "vigil's primary group is not vigil"
  run id -nG vigil | grep -qw video || fail "vigil is not in the video group: $(run id -nG vigil)"
  # (stat in the root: owner names come from its /etc/passwd, not this machine's)
  [ "$(run stat -c %U:%G:%a /var/lib/vigil)" = vigil:vigil:750 ] ||
    fail "/var/lib/vigil is $(run stat -c %U:%G:%a /var/lib/vigil), expected vigil:vigil:750"
  [ "$(run stat -c %U:%G:%a /etc/vigil/cameras)" = root:vigil:750 ] ||
    fail "/etc/vigil/cameras is $(run stat -c %U:%G:%a /etc/vigil/cameras), expected root:vigil:750"

  # As systemd runs the units: user vigil, groups vigil and video (numeric: looked up in the root).
  video_gid=$(run getent group video | cut -d: -f3)
  as_vigil() { chroot --userspec="$uid:$gid" --groups="$gid,$video_gid" "$root" env HOME=/var/lib/vigil "$@"; }

  # The units.
  echo '{"source": "/dev/video0"}' >"$root/etc/vigil/cameras/cam1.json"
  for u in vigil-serve.service vigil-watch@.service; do
    grep -q '^User=vigil$' "$root/lib/systemd/system/$u" || fail "$u does not run as vigil"
    for k in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes StateDirectory=vigil; do
      grep -q "^$k$" "$root/lib/systemd/system/$u" || fail "$u lacks $k"
    done
  done
  grep -q '^ExecStart=/usr/bin/vigil watch --config /etc/vigil/cameras/%i.json$' \
    "$root/lib/systemd/system/vigil-watch@.service" || fail "vigil-watch@.service runs the wrong command"
  if command -v systemd-analyze >/dev/null && [ -f /lib/systemd/system/sysinit.target ]; then
    # The minimal root has no systemd: verify with this machine's systemd on a root made of its units,
    # the package's units and the package's binary.
    vroot=$(mktemp -d)
    mkdir -p "$vroot/lib/systemd/system" "$vroot/usr/bin" "$vroot/etc/vigil/cameras"
    cp -a /lib/systemd/system/. "$vroot/lib/systemd/system/"
    cp "$root"/lib/systemd/system/vigil-*.service "$vroot/lib/systemd/system/"
    cp "$root/usr/bin/vigil" "$vroot/usr/bin/"
    cp -a "$root/etc/vigil/." "$vroot/etc/vigil/"
    out=$(systemd-analyze verify --man=no --root="$vroot" vigil-serve.service vigil-watch@cam1.service 2>&1) ||
      fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify warns: $out"
    rm -rf "$vroot"
    say "units pass systemd-analyze verify"
  else
    for u in vigil-serve.service vigil-watch@.service; do
      awk '/^[[:space:]]*(#|;|$)/ {next}
           /^\[(Unit|Service|Install)\]$/ {next}
           /^[A-Za-z]+=/ {next}
           {print FILENAME ":" FNR ": not a section or Key=value: " $0; bad = 1}
           END {exit bad}' "$root/lib/systemd/system/$u" || fail "$u has syntax errors"
    done
    say "units pass a syntax check (no systemd-analyze here)"
  fi

  # vigil runs as the vigil user, finds its models, reads a sample.
  version=$(as_vigil vigil --version) || fail "vigil --version failed as the vigil user"
  echo "$version" | grep -q '^vigil [0-9]' || fail "vigil --version printed: $version"
  log=$(as_vigil vigil -v read --json /usr/share/vigil/samples/ro-dashcam-close.jpg 2>&1 >"$root/tmp/read.json") ||
    fail "vigil read failed as the vigil user: $log"
  echo "$log" | grep -q "models from /usr/share/vigil/models" || fail "vigil did not use /usr/share/vigil/models: $log"
  grep -q '"error":null' "$root/tmp/read.json" || fail "vigil read: $(cat "$root/tmp/read.json")"

  # Camera configs: the example passes --check; a broken one fails naming the file and the line.
  out=$(as_vigil vigil watch --config /etc/vigil/cameras/example.json --check 2>&1) ||
    fail "the example camera config does not pass --check: $out"
  printf '{\n  "source": "/dev/video0",\n  "roi": [[0, 0], [640, 0]]\n}\n' >"$root/etc/vigil/cameras/broken.json"
  set +e
  out=$(as_vigil vigil watch --config /etc/vigil/cameras/broken.json --check 2>&1)
  rc=$?
  set -e
  [ "$rc" = 2 ] || fail "a broken camera config gave exit status $rc (expected 2): $out"
  echo "$out" | grep -q 'broken.json:3: roi' || fail "the error does not name the line: $out"

  # Purge removes the files, the configuration (camera files included) and the state folder.
  DEBIAN_FRONTEND=noninteractive run apt-get purge -y -qq vigil >"$cache/apt-purge.log" 2>&1 ||
    fail "apt-get purge vigil failed: $(tail -20 "$cache/apt-purge.log")"
  for f in usr/bin/vigil usr/share/vigil lib/systemd/system/vigil-serve.service \
    lib/systemd/system/vigil-watch@.service etc/vigil var/lib/vigil usr/share/doc/vigil; do
    [ ! -e "$root/$f" ] || fail "/$f is left after purge"
  done
  ! run dpkg-statoverride --list /etc/vigil/cameras >/dev/null || fail "purge left the statoverride"
  exit 0
fi

# ------------------------------------------------------------------------------------------------------
# Outside: preconditions, the .deb, the cached root.
if [ "$(id -u)" != 0 ]; then
  echo "package_test: SKIP: needs root (debootstrap, chroot and mounts); run it as root: sudo ctest -L package"
  exit 77
fi
for tool in debootstrap cpack dpkg-shlibdeps unshare chroot; do
  if ! command -v "$tool" >/dev/null; then
    echo "package_test: SKIP: $tool is missing (bash scripts/deps.sh installs it)"
    exit 77
  fi
done
start=$SECONDS
mkdir -p "$cache"

t=$SECONDS
rm -rf "$cache/deb"
(cd "$build" && cpack -G DEB -B "$cache/deb" >"$cache/cpack.log" 2>&1) || {
  tail -30 "$cache/cpack.log"
  fail "cpack failed (log: $cache/cpack.log)"
}
deb=$(ls "$cache"/deb/vigil_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "cpack wrote no vigil_*.deb: $(cat "$cache/cpack.log")"
say "cpack: $(basename "$deb") ($(du -h "$deb" | cut -f1)) in $(elapsed $t)"
dpkg-deb --field "$deb" Depends | grep -q libopencv || fail "the .deb's Depends has no OpenCV library"
dpkg-deb --field "$deb" Architecture | grep -qx "$(dpkg --print-architecture)" ||
  fail "the .deb is for $(dpkg-deb --field "$deb" Architecture), this machine is $(dpkg --print-architecture)"

# The mirror: VIGIL_DEBIAN_MIRROR, else the first of this machine's apt sources that serves $suite.
mirror=${VIGIL_DEBIAN_MIRROR:-}
sources=()
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
  [ -f "$f" ] && sources+=("$f")
done
if [ -z "$mirror" ] && [ ${#sources[@]} -gt 0 ]; then
  mirror=$(awk -v suite="$suite" '
    function check() {
      if (!found && uris != "" && (" " types " ") ~ / deb / && (" " suites " ") ~ (" " suite " ")) {
        print uris
        found = 1
      }
      types = uris = suites = ""
    }
    FNR == 1 { check() }
    /^[[:space:]]*$/ { check() }
    /^Types:/ { types = $0 } /^URIs:/ { uris = $2 } /^Suites:/ { suites = $0 }
    /^deb[[:space:]]/ && !found {
      i = 2
      if ($2 ~ /^\[/) { while (i < NF && $i !~ /\]$/) i++; i++ }
      if ($(i + 1) == suite) { print $i; found = 1 }
    }
    END { check() }' "${sources[@]}" | head -1)
fi
[ -n "$mirror" ] || fail "no apt source for Debian $suite on this machine: set VIGIL_DEBIAN_MIRROR=URL"

arch=$(dpkg --print-architecture)
tarball="$cache/debian-$suite-minbase-$arch.tar.gz"
work=$(mktemp -d "$cache/root.XXXXXX")
root="$work/root"
cleanup_outside() {
  # The mounts were private to the namespace; refuse to delete through one that somehow leaked.
  if findmnt -rn -o TARGET | grep -q "^$work"; then
    echo "package_test: mounts left under $work; not deleting it" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup_outside EXIT

# A private mount namespace; where "/" is not a mount point (inside a chroot) its propagation cannot be
# changed, and the namespace keeps the parent's (the cleanup traps still unmount everything).
if unshare --mount --propagation private true 2>/dev/null; then
  private_ns=(unshare --mount --propagation private)
else
  private_ns=(unshare --mount --propagation unchanged)
  say "note: mount propagation cannot be made private here (a chroot?); using the parent's"
fi

t=$SECONDS
if [ ! -f "$tarball" ]; then
  say "debootstrap --variant=minbase $suite from $mirror (cached for the next run as $tarball)"
  "${private_ns[@]}" \
    debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$cache/debootstrap.log" 2>&1 || {
    tail -30 "$cache/debootstrap.log"
    fail "debootstrap failed (log: $cache/debootstrap.log)"
  }
  rm -f "$root"/var/cache/apt/archives/*.deb
  tar --numeric-owner -C "$root" -czf "$tarball.tmp" . && mv "$tarball.tmp" "$tarball"
  say "debootstrap: $(elapsed $t)"
else
  mkdir "$root"
  tar --numeric-owner -C "$root" -xzf "$tarball"
  say "minimal Debian $suite root from the cache: $(elapsed $t)"
fi

"${private_ns[@]}" bash "$0" --in-namespace "$build" "$root" "$deb"
say "OK in $(elapsed $start)"
