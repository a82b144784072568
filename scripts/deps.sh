#!/bin/sh
# Installs what building and testing lsm_am needs on Debian 12, when missing.
# Runtime needs of the engine: libc + pthreads only.  The rest is for the
# tests and benchmarks (reference liblz4, zlib, libxxhash; LevelDB and
# RocksDB as the benchmark's peers), clang with libFuzzer for the fuzz
# targets, and PostgreSQL.
set -e
pkgs="gcc make libc6-dev liblz4-dev zlib1g-dev libxxhash-dev libleveldb-dev librocksdb-dev clang libclang-rt-14-dev postgresql-15 postgresql-server-dev-15"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
