"""vLLM (absent here: a clear error) and the classifier backend's prompt handling."""

import importlib.util

import pytest

from cyberslm.errors import CyberslmError
from cyberslm.models.backend import GenerationConfig, load_backend
from cyberslm.models.classifier_backend import cve_description

RCM = ("Analyze the following CVE description and map it to the appropriate CWE. Provide a brief justification "
       "for your choice. Ensure the last line of your response contains only the CWE ID.  CVE Description: "
       "SQL injection in the login form of ExampleShop 1.2 lets attackers run arbitrary SQL via the user field. ")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm installed")
def test_vllm_absent_is_clear_error():
    with pytest.raises(CyberslmError, match="vllm: backend needs the 'vllm' package"):
        load_backend("vllm:./merged")


def test_cve_description_extraction():
    conv = [{"role": "system", "content": "x"}, {"role": "user", "content": RCM}]
    assert cve_description(conv).startswith("SQL injection in the login form")
    assert cve_description([{"role": "user", "content": "What is CWE-79?"}]) is None


@pytest.fixture()
def tiny_classifier(tmp_path):
    """A real (tiny) classifier artifact written with own save(): safetensors + JSON."""
    np = pytest.importorskip("numpy")
    from scipy.sparse import csr_matrix

    from cyberslm.models.cwe_classifier import CweClassifier

    labels = ["CWE-79", "CWE-89", "CWE-416"]
    words = {"script": 0, "sql": 1, "injection": 1, "free": 2}
    vocab = {w: i for i, w in enumerate(words)}
    weights = np.zeros((len(vocab), len(labels)), np.float32)
    for w, label in words.items():
        weights[vocab[w], label] = 5.0
    clf = CweClassifier(vocab, np.ones(len(vocab), np.float32), csr_matrix(weights), np.zeros(3, np.float32), labels)
    return clf.save(tmp_path / "clf")


def test_classifier_answers_rcm_prompts_only(tiny_classifier):
    backend = load_backend(f"classifier:{tiny_classifier}")
    rcm, other = backend.generate([[{"role": "user", "content": RCM}], [{"role": "user", "content": "hi"}]],
                                  GenerationConfig())
    justification, last = rcm.splitlines()
    assert last == "CWE-89" and "CWE-89" in justification and "Neutralization" in justification  # name from the KB
    assert other == ""
    from cyberslm.eval.parsing import extract_cwe

    assert extract_cwe(rcm, strict=True) == "CWE-89"


def test_classifier_missing_artifact_is_clear_error(tmp_path):
    with pytest.raises(CyberslmError, match="no classifier artifact"):
        load_backend(f"classifier:{tmp_path / 'none'}")
