#!/usr/bin/env bash
# Builds the Debian package bpfilter-nft_VERSION_amd64.deb with dpkg-deb --build:
#   /usr/sbin/bpfilterd                            the NativeAOT daemon (scripts/publish.sh)
#   /usr/sbin/bfnft                                 nft wrapper, pointed at the installed interposer
#   /usr/lib/x86_64-linux-gnu/bfnft/libbfnft.so     the LD_PRELOAD interposer
#   /lib/systemd/system/{bpfilterd,bfnft-load}.service, /etc/default/bpfilterd (conffile),
#   /usr/share/man/man8/{bpfilterd,bfnft}.8.gz, /usr/share/doc/bpfilter-nft/
# Usage: scripts/build-deb.sh [OUTDIR]   (default out/deb; prints the .deb's path last)
# The binary is reused from out/publish/bpfilterd when it is newer than every source file of the
# daemon, else published (a few minutes); BPFILTERD_BIN=PATH uses that binary as it is.
# VERSION=... overrides the version (default 0.1.0~gitN.SHA from the checkout).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
outdir=${1:-$root/out/deb}
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
cd "$root"

bin=${BPFILTERD_BIN:-}
if [ -z "$bin" ]; then
  bin=$root/out/publish/bpfilterd
  stale=
  if [ -x "$bin" ]; then
    stale=$(find Bpfilter.Daemon Bpfilter.Backend Nft.Netlink Nft.Bytecode Nft.Lifter Nft.Engine Nft.Kernel \
      Directory.Build.props global.json \( -path '*/bin' -o -path '*/obj' \) -prune -o \
      \( -name '*.cs' -o -name '*.csproj' -o -name '*.props' -o -name '*.json' \) -newer "$bin" -print | head -1)
  fi
  if [ ! -x "$bin" ] || [ -n "$stale" ]; then
    echo "build-deb: publishing bpfilterd (NativeAOT)${stale:+: $stale is newer than $bin}" >&2
    "$root/scripts/publish.sh" "$root/out/publish" >&2
  fi
fi
[ -x "$bin" ] || { echo "build-deb: $bin is not an executable" >&2; exit 1; }
make -s -C "$root/patches/nftables"

if [ -z "${VERSION:-}" ]; then
  VERSION="0.1.0~git$(git rev-list --count HEAD 2>/dev/null || echo 0).$(git rev-parse --short=8 HEAD 2>/dev/null || echo unknown)"
fi
libdir=usr/lib/x86_64-linux-gnu/bfnft
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
p=$stage/bpfilter-nft
deb=packaging/debian
install -d -m 0755 "$p/DEBIAN" "$p/usr/sbin" "$p/$libdir" "$p/lib/systemd/system" "$p/etc/default" \
  "$p/usr/share/man/man8" "$p/usr/share/doc/bpfilter-nft"

install -m 0755 "$bin" "$p/usr/sbin/bpfilterd"
install -m 0644 patches/nftables/build/libbfnft.so "$p/$libdir/libbfnft.so"
strip --strip-unneeded "$p/$libdir/libbfnft.so"
sed "s|^installed_lib=\$|installed_lib=/$libdir/libbfnft.so|" patches/nftables/bfnft >"$p/usr/sbin/bfnft"
chmod 0755 "$p/usr/sbin/bfnft"
grep -qx "installed_lib=/$libdir/libbfnft.so" "$p/usr/sbin/bfnft" || { echo "build-deb: bfnft has no installed_lib= line" >&2; exit 1; }
install -m 0644 packaging/systemd/bpfilterd.service packaging/systemd/bfnft-load.service "$p/lib/systemd/system/"
install -m 0644 "$deb/bpfilterd.default" "$p/etc/default/bpfilterd"
for m in bpfilterd bfnft; do gzip -9n <"$deb/$m.8" >"$p/usr/share/man/man8/$m.8.gz"; chmod 0644 "$p/usr/share/man/man8/$m.8.gz"; done
install -m 0644 README.md "$deb/copyright" "$p/usr/share/doc/bpfilter-nft/"
# A native package's changelog: one entry for the commit it was built from.
maintainer=$(sed -n 's/^Maintainer: //p' "$deb/control.in")
{
  printf 'bpfilter-nft (%s) unstable; urgency=medium\n\n' "$VERSION"
  printf '  * Built by scripts/build-deb.sh from commit %s.\n\n' "$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)"
  printf ' -- %s  %s\n' "$maintainer" "$(git log -1 --format=%aD 2>/dev/null || date -R)"
} | gzip -9n >"$p/usr/share/doc/bpfilter-nft/changelog.gz"
chmod 0644 "$p/usr/share/doc/bpfilter-nft/changelog.gz"

install -m 0755 "$deb/postinst" "$deb/prerm" "$deb/postrm" "$p/DEBIAN/"
echo /etc/default/bpfilterd >"$p/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$p" | cut -f1)
sed -e "s|@VERSION@|$VERSION|" -e "s|@SIZE@|$size|" "$deb/control.in" >"$p/DEBIAN/control"
(cd "$p" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) >"$p/DEBIAN/md5sums"
chmod 0644 "$p/DEBIAN/control" "$p/DEBIAN/conffiles" "$p/DEBIAN/md5sums"

out=$outdir/bpfilter-nft_${VERSION}_amd64.deb
rm -f "$outdir"/bpfilter-nft_*_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$p" "$out" >&2
echo "$out"
