"""Reading a large feed streams: peak memory does not grow with the file (json.load would need ~5x it)."""

from __future__ import annotations

import subprocess
import sys

from cve_builders import write_big_nvd11_feed

MEASURE = """
import resource, sys
from cyberslm.data.reader import read_cves
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
count = sum(1 for _ in read_cves(sys.argv[1]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(count, (peak - base) // 1024)
"""


def test_large_feed_reads_in_flat_memory(tmp_path):
    path = tmp_path / "nvdcve-1.1-big.json.gz"
    items, size = write_big_nvd11_feed(path, target_bytes=80 << 20)
    assert size > 80 << 20
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    count, grew_mb = map(int, done.stdout.split())
    assert count == items
    assert grew_mb < 60, f"peak RSS grew {grew_mb} MB reading an {size >> 20} MB feed"
