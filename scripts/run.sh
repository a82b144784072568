#!/bin/sh
# Main job: install dependencies, build the engine, run the engine benchmark
# (memtable + WAL write path, reads, primitives beside reference libraries).
set -e
cd "$(dirname "$0")/.."
sh scripts/deps.sh
make -s -C engine
B=engine/build/lsm_bench
echo "== one thread, sync off"
$B --benchmarks=fillseq,fillrandom,overwrite,readrandom,readseq --num=1000000
echo "== primitives"
$B --benchmarks=crc32,xxh64,lz4,bloom
echo "== synced writes: group commit, 1 thread vs 4 threads"
$B --benchmarks=fillrandom --num=2000 --sync --threads=1
$B --benchmarks=fillrandom --num=2000 --sync --threads=4
