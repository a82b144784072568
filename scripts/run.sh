#!/bin/sh
# Main job: install dependencies, build the engine, and print its figures:
# our engine beside LevelDB and RocksDB in one run (as ratios), synced
# writes with group commit, WAL recovery time, and the primitives beside
# their reference libraries.
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
make -s -C engine
make -s -C bench
P=bench/build/engine_vs_peers
B=engine/build/lsm_bench
echo "== lsm vs LevelDB vs RocksDB: 1M keys, 16 B keys, 100 B values, 64 MiB memtable and cache, sync off"
$P --num=1000000
echo "== synced writes: 1 thread, then 8 threads (group commit)"
$P --benchmarks=fillrandom --num=4000 --sync --threads=1
$P --benchmarks=fillrandom --num=500 --sync --threads=8
echo "== recovery: replaying a 100 MB WAL"
$B --benchmarks=recover --recover_mb=100
echo "== primitives"
$B --benchmarks=crc32,xxh64,lz4,bloom
