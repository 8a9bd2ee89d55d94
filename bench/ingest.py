"""Reader throughput and peak memory: real NVD feeds, and a synthetic ~1 GB NVD 1.1 feed.

    python bench/ingest.py /work/shared/data/nvd/nvdcve-1.1-2022.json.gz --big-mb 1024
    python bench/ingest.py /work/shared/data/nvd/*.gz --big-mb 0 --repeat 1 --table \
        --exclude /work/shared/data/cti-bench-format/cti-rcm-sample.tsv --near-dup 3000

Each measurement runs `read_cves` in a fresh subprocess and reports records/second and how much the
peak RSS grew above the process's baseline after imports (ru_maxrss), so one file cannot inflate another.
"""

from __future__ import annotations

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _table_child(spec: str) -> None:
    from cyberslm.data.cwe_table import build_cwe_table

    args = json.loads(spec)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    stats = build_cwe_table(args["feeds"], args["out"], exclude=args["exclude"], overwrite=True)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"stats": stats.to_dict(), "seconds": seconds, "base_mb": base / 1024, "peak_mb": peak / 1024}))


def measure_table(feeds: list[Path], exclude: list[Path]) -> None:
    """`build_cwe_table` (what `cyberslm data cwe` runs) over all feeds, to JSONL and to Parquet."""
    print("\n| build_cwe_table output | read | written | labels | time | records/s | peak RSS growth |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for out in ("cwe.jsonl", "cwe.parquet"):
            spec = json.dumps({"feeds": [str(f) for f in feeds], "exclude": [str(e) for e in exclude],
                               "out": str(Path(tmp) / out)})
            done = subprocess.run([sys.executable, __file__, "--table-child", spec], capture_output=True, text=True,
                                  check=True)
            m = json.loads(done.stdout)
            st = m["stats"]
            print(f"| {out} | {st['read']:,} | {st['written']:,} | {st['labels']} | {m['seconds']:.1f} s | "
                  f"{st['read'] / m['seconds']:,.0f} | {m['peak_mb'] - m['base_mb']:.0f} MB |", flush=True)


def measure_near_dup(feeds: list[Path], indexed: int, checked: int = 3000) -> None:
    """Index `indexed` random real descriptions as excluded, check every description against them."""
    import random

    from cyberslm.data.decontam import Exclusions, jaccard, shingles
    from cyberslm.data.reader import read_cves

    texts = [r.description for feed in feeds for r in read_cves(feed)]
    rng = random.Random(0)
    excluded = rng.sample(texts, indexed)
    start = time.perf_counter()
    index = Exclusions(descriptions=excluded)
    built = time.perf_counter() - start
    start = time.perf_counter()
    hits = sum(index.is_near_duplicate(t) for t in texts)
    seconds = time.perf_counter() - start
    sets = [shingles(t) for t in excluded]
    sample = rng.sample(texts, checked)
    disagree = sum(index.is_near_duplicate(t) != any(jaccard(shingles(t), s) >= 0.8 for s in sets) for t in sample)
    print(f"\nnear-duplicate search: {indexed:,} indexed in {built:.2f} s; {len(texts):,} checked in {seconds:.1f} s "
          f"({len(texts) / seconds:,.0f}/s), {hits:,} near-duplicates; brute force disagrees on {disagree} of {checked:,}")


def _child(path: str) -> None:
    from cyberslm.data.reader import read_cves

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    count = sum(1 for _ in read_cves(path))
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"records": count, "seconds": seconds, "base_mb": base / 1024, "peak_mb": peak / 1024}))


def measure(path: Path, repeat: int) -> dict:
    """Fastest of `repeat` fresh-process runs (the machine is shared), and the largest memory growth."""
    runs = []
    for _ in range(repeat):
        done = subprocess.run([sys.executable, __file__, "--child", str(path)], capture_output=True, text=True, check=True)
        runs.append(json.loads(done.stdout))
    best = min(runs, key=lambda r: r["seconds"])
    worst = max(runs, key=lambda r: r["peak_mb"] - r["base_mb"])
    return {**best, "base_mb": worst["base_mb"], "peak_mb": worst["peak_mb"]}


def json_bytes(path: Path) -> int:
    """Uncompressed JSON size of a feed (.gz or plain) or of a folder of records."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*.json"))
    if path.suffix != ".gz":
        return path.stat().st_size
    with gzip.open(path, "rb") as fh:
        return sum(len(chunk) for chunk in iter(lambda: fh.read(1 << 20), b""))


def write_synthetic_feed(path: Path, target_bytes: int) -> int:
    """An NVD 1.1-shaped feed (items with 40 CPE matches each, like real feeds' configurations)."""
    cpes = [{"vulnerable": True, "cpe23Uri": f"cpe:2.3:a:vendor:product:{v}.0:*:*:*:*:*:*:*", "cpe_name": []}
            for v in range(40)]
    written = n = 0
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as fh:
        fh.write('{"CVE_data_type":"CVE","CVE_data_format":"MITRE","CVE_data_version":"4.0","CVE_Items":[')
        while written < target_bytes:
            item = {
                "cve": {
                    "CVE_data_meta": {"ID": f"CVE-2099-{n:07d}", "ASSIGNER": "cve@mitre.org"},
                    "problemtype": {"problemtype_data": [{"description": [{"lang": "en", "value": f"CWE-{n % 900}"}]}]},
                    "description": {"description_data": [{"lang": "en", "value": f"Synthetic flaw {n}. " * 8}]},
                },
                "configurations": {"CVE_data_version": "4.0", "nodes": [{"operator": "OR", "cpe_match": cpes}]},
                "impact": {"baseMetricV3": {"cvssV3": {"vectorString": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}}},
                "publishedDate": "2099-01-01T00:00Z",
            }
            chunk = ("," if n else "") + json.dumps(item)
            fh.write(chunk)
            written += len(chunk)
            n += 1
        fh.write("]}")
    return written


def row(name: str, size: int, m: dict) -> str:
    rate = m["records"] / m["seconds"]
    return (f"| {name} | {size / 2**20:,.1f} MB | {m['records']:,} | {m['seconds']:.1f} s | {rate:,.0f} | "
            f"{size / 2**20 / m['seconds']:.0f} MB/s | {m['base_mb']:.0f} MB | {m['peak_mb'] - m['base_mb']:.0f} MB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("feeds", nargs="*", type=Path, help="real feeds to time (any format read_cves reads)")
    parser.add_argument("--big-mb", type=int, default=1024, help="size of the synthetic feed, uncompressed; 0 skips")
    parser.add_argument("--repeat", type=int, default=5, help="runs per real feed; the fastest is reported")
    parser.add_argument("--table", action="store_true", help="also time build_cwe_table over all the feeds")
    parser.add_argument("--exclude", type=Path, action="append", default=[], help="benchmark file for --table")
    parser.add_argument("--near-dup", type=int, default=0, help="also time near-dup search with this many indexed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--table-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return _child(args.child)
    if args.table_child:
        return _table_child(args.table_child)

    print("| file | JSON size | records | time | records/s | JSON MB/s | baseline RSS | peak RSS growth |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for feed in args.feeds:
        print(row(feed.name, json_bytes(feed), measure(feed, args.repeat)), flush=True)
    if args.big_mb:
        with tempfile.TemporaryDirectory() as tmp:
            big = Path(tmp) / "nvdcve-1.1-synthetic.json.gz"
            size = write_synthetic_feed(big, args.big_mb << 20)
            print(row(f"synthetic NVD 1.1 feed ({big.stat().st_size / 2**20:.0f} MB gz)", size, measure(big, 1)))
    if args.table:
        measure_table(args.feeds, args.exclude)
    if args.near_dup:
        measure_near_dup(args.feeds, args.near_dup)


if __name__ == "__main__":
    main()
