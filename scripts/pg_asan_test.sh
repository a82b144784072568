#!/bin/sh
# The pg_regress and isolation suites with the extension and the engine
# built with -fsanitize=address,undefined, against a PostgreSQL 15 server
# built from Debian's source with -fsanitize=address.
#
# Why not the stock server with the ASan runtime preloaded: Debian's
# PostgreSQL 15 binaries hang at start with libasan in LD_PRELOAD (gcc 12's
# and clang 14's alike; `postgres -V` never returns): glibc's locale locks
# deadlock in bindtextdomain when the runtime initializes first.  A server
# linked with ASan loads the runtime the supported way, and the extension
# built with ASan resolves against it.
#
# The server is built once into ASAN_PG (default /tmp/lsm_pg_asan: about
# 5 minutes on 2 cores) and reused.  Leak reports are off for the server:
# PostgreSQL frees its memory by ending processes; the engine's own leak
# checks run in its test binaries (make -C engine test SANITIZE=1).  Any
# AddressSanitizer or UBSan report in a server log fails the run.
# Usage: sh scripts/pg_asan_test.sh.  Ends "N passed, N failed".
cd "$(dirname "$0")/.." || exit 2
REPO=$(pwd)
ASAN_PG=${ASAN_PG:-/tmp/lsm_pg_asan}
WORK=$(mktemp -d /tmp/lsm_am_asan.XXXXXX)
die() {
	echo "$1"
	echo "0 passed, 1 failed"
	exit 1
}

build_server() {
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO=sudo
	if ! grep -rqs '^Types: *deb-src' /etc/apt/sources.list.d/ /etc/apt/sources.list; then
		# the same archive the binaries come from, for its sources
		sed 's/^Types: *deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
			$SUDO tee /etc/apt/sources.list.d/lsm-asan-src.sources >/dev/null
		$SUDO apt-get update -qq || return 1
	fi
	mkdir -p "$ASAN_PG.src" && cd "$ASAN_PG.src" || return 1
	if [ ! -d postgresql-15-src ]; then
		# the newest version whose source the mirror has
		for v in $(apt-cache showsrc postgresql-15 | sed -n 's/^Version: //p' | sort -rV); do
			apt-get source -qq --download-only "postgresql-15=$v" >/dev/null 2>&1 && break
		done
		tarball=$(ls postgresql-15_*.orig.tar.bz2 2>/dev/null | head -n 1)
		[ -n "$tarball" ] || return 1
		mkdir postgresql-15-src && tar xjf "$tarball" -C postgresql-15-src --strip-components=1 || return 1
	fi
	cd postgresql-15-src || return 1
	# libxml: the types suite stores xml
	dpkg-query -W -f='${Status}' libxml2-dev 2>/dev/null | grep -q "install ok installed" ||
		DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libxml2-dev >/dev/null || return 1
	# a build left by an earlier configuration would be reused file by file
	[ -f GNUmakefile ] && make -s distclean >/dev/null 2>&1
	./configure -q --prefix="$ASAN_PG" --without-readline --without-icu --without-llvm --with-libxml \
		CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address" \
		LDFLAGS="-fsanitize=address" >"$WORK/configure.log" 2>&1 || return 1
	make -s -j"$(nproc)" >"$WORK/build.log" 2>&1 || return 1
	make -s install >>"$WORK/build.log" 2>&1 || return 1
	make -s -C src/test/isolation install >>"$WORK/build.log" 2>&1 || return 1
	# the contrib modules the suites use
	for m in pageinspect btree_gist; do
		make -s -C "contrib/$m" install >>"$WORK/build.log" 2>&1 || return 1
	done
	touch "$ASAN_PG/.built"
	cd "$REPO"
}

if [ ! -f "$ASAN_PG/.built" ]; then
	echo "building PostgreSQL 15 with AddressSanitizer into $ASAN_PG"
	(build_server) || { tail -n 30 "$WORK"/*.log 2>/dev/null; die "server build failed"; }
fi
PG_CONFIG=$ASAN_PG/bin/pg_config
# every program of that build is instrumented, pg_config and psql too:
# their leaks at exit are PostgreSQL's, not ours
export ASAN_OPTIONS=detect_leaks=0
echo "server: $("$ASAN_PG/bin/postgres" -V)"

# the extension from a copy of the tree, so this build's objects never
# mix with the ordinary one's
mkdir -p "$WORK/src"
git ls-files -z | xargs -0 cp --parents -t "$WORK/src" 2>/dev/null ||
	tar cf - --exclude=./engine/build\* . | tar xf - -C "$WORK/src"
cd "$WORK/src" || die "no copy"
make -s SANITIZE=1 PG_CONFIG="$PG_CONFIG" >"$WORK/ext.log" 2>&1 || { tail -n 30 "$WORK/ext.log"; die "extension build failed"; }
nm -D lsm_am.so | grep -q __asan_report || die "lsm_am.so is not instrumented"
# the suites themselves, from the copy, against the ASan server
PG_CONFIG="$PG_CONFIG" LSM_MAKE_FLAGS="SANITIZE=1" LSM_SUITES_ONLY=1 \
	LSM_SERVER_ENV="ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:detect_stack_use_after_return=0 UBSAN_OPTIONS=print_stacktrace=1" \
	sh scripts/pg_test.sh
rc=$?
[ "$rc" -eq 0 ] && rm -rf "$WORK"
exit "$rc"
