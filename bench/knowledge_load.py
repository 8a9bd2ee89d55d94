"""Knowledge load timings: cold parse vs. cached load in a fresh process, and `kb import` of real releases.

    python bench/knowledge_load.py [RELEASE_FILE ...]     # e.g. /work/shared/data/attack/*.json.gz

Uses a throw-away CYBERSLM_HOME, so the user's store and caches are untouched. Each timing is a
separate Python process (what a CLI call or a triage run pays), best of --repeat runs.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

SNIPPETS = {
    "cwe: kb.weakness('CWE-79')": "kb.weakness('CWE-79')",
    "attack: kb.get('T1059.001')": "kb.get('T1059.001')",
    "all: kb.search('sql injection')": "kb.search('sql injection')",
}
TIMER = """
import json, time
t0 = time.perf_counter()
from cyberslm.knowledge import load_knowledge
kb = load_knowledge()
{stmt}
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""


def timed(stmt: str, env: dict) -> float:
    out = subprocess.run([sys.executable, "-c", TIMER.format(stmt=stmt)], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", help="official releases to time `kb import` on")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "CYBERSLM_HOME": home}
        print("| step | seconds |\n|---|---|")
        for label, stmt in SNIPPETS.items():
            cold = timed(stmt, env)  # the first process parses and writes the cache
            warm = min(timed(stmt, env) for _ in range(args.repeat))
            print(f"| {label}, first process (parses what is not cached yet) | {cold:.2f} |")
            print(f"| {label}, later process (cache) | {warm:.2f} |")
        for path in args.files:
            stmt = f"from cyberslm.knowledge.base import import_file; import_file({path!r})"
            print(f"| kb import {os.path.basename(path)} (process total) | {timed(stmt, env):.2f} |")


if __name__ == "__main__":
    main()
