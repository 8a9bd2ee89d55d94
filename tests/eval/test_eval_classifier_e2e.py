"""RCM through the CPU classifier backend: every answer parses; non-RCM prompts are unparseable."""

import pytest

from cyberslm.eval.protocol import get_protocol
from cyberslm.eval.runner import RunConfig, evaluate
from cyberslm.eval.tasks import get_tasks
from cyberslm.models.backend import load_backend
from cyberslm.paths import ASSETS


@pytest.mark.skipif(not (ASSETS / "cwe-classifier" / "weights.safetensors").exists(),
                    reason="bundled classifier artifact not built yet")
def test_classifier_on_rcm_and_mcq(fixtures_dir, tmp_path):
    backend = load_backend("classifier:default")
    config = RunConfig(model="classifier:default", tasks=get_tasks("cti-mcq,cti-rcm,cti-rcm-2021"),
                       protocol=get_protocol("foundation-sec"), data_dir=fixtures_dir, output_dir=tmp_path,
                       trials=1, progress=False)
    report = evaluate(backend, config)
    for name in ("cti-rcm", "cti-rcm-2021"):
        assert report["tasks"][name]["unparseable_mean"] == 0
        assert report["tasks"][name]["metrics"]["unknown_cwe_count"]["mean"] == 0  # ids exist in the catalog
    assert report["tasks"]["cti-mcq"]["unparseable_mean"] == 4  # the classifier does not answer MCQs
    assert report["tasks"]["cti-mcq"]["metrics"]["accuracy"]["mean"] == 0.0
