"""Every task end to end through the real SmolLM2 GGUF on CPU (one item, short answers)."""

import json

import pytest

from cyberslm.eval.protocol import get_protocol
from cyberslm.eval.runner import RunConfig, evaluate
from cyberslm.eval.tasks import TASKS


@pytest.mark.slow
def test_every_task_through_smollm2(smollm2, single_thread, fixtures_dir, tmp_path):
    config = RunConfig(model="hf:smollm2", tasks=list(TASKS.values()), protocol=get_protocol("foundation-sec"),
                       data_dir=fixtures_dir, output_dir=tmp_path, trials=1, limit=1, max_new_tokens=6,
                       progress=False)
    report = evaluate(smollm2, config, alias=fixtures_dir / "taa-alias.json")
    rows = [json.loads(line) for line in (config.run_dir() / "responses.jsonl").read_text().splitlines()]
    assert len(rows) == len(TASKS)
    assert all(isinstance(r["response"], str) and r["response"] for r in rows)
    assert {r["seed"] for r in rows} == {1234}
    for name, result in report["tasks"].items():
        assert result["trials"] == 1 and result["n"] == 1, name
        primary = result["metrics"].get(result["primary"])
        if name != "cti-vsp":  # VSP has no MAD when no vector parses
            assert 0.0 <= primary["mean"] <= 1.0, name
    assert (config.run_dir() / "report.png").exists()
