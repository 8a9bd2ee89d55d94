#!/usr/bin/env bash
# Lint and run the default test suite (under ~10 minutes on 2 cores). Run scripts/setup.sh once first.
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
ruff check src tests bench
# Tests never touch the network; models and data come from installed packages and fixtures.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
python -m pytest -q "$@"
