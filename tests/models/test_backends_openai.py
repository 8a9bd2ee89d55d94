"""The openai backend against a real loopback OpenAI-compatible server."""

import pytest

from cyberslm.errors import CyberslmError
from cyberslm.models.backend import GenerationConfig, load_backend


def _chat(text):
    return [{"role": "user", "content": text}]


def test_generate_in_order_with_seed_and_key(oai, monkeypatch):
    monkeypatch.setenv("CYBERSLM_API_KEY", "sekret")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    backend = load_backend(f"openai:{oai.url}#test-model")
    prompts = ["map it to the appropriate CWE", "a multiple-choice question", "hello"] * 4
    out = backend.generate([_chat(p) for p in prompts], GenerationConfig(temperature=0.3, seed=5))
    assert out[:3] == ["The input reaches HTML output unescaped.\nCWE-79", "Options were compared against ATT&CK.\nB", "I do not know."]
    assert out == out[:3] * 4
    assert {r["seed"] for r in oai.requests} == {5} and {r["model"] for r in oai.requests} == {"test-model"}
    assert {r["auth"] for r in oai.requests} == {"Bearer sekret"}
    backend.close()


def test_stream_and_retry(oai):
    backend = load_backend(f"openai:{oai.url}#m", max_retries=2)
    pieces = list(backend.stream(_chat("threat actor"), GenerationConfig()))
    assert len(pieces) > 2 and "".join(pieces).strip().endswith("Fancy Bear")
    # the server fails this prompt once with 503; the client backs off and retries
    assert backend.generate([_chat("appropriate CWE FLAKY")], GenerationConfig())[0].endswith("CWE-79")
    assert len([r for r in oai.requests if "FLAKY" in r["prompt"]]) == 2


def test_errors_are_one_line():
    with pytest.raises(CyberslmError, match="expected openai:http"):
        load_backend("openai:localhost:8000")
    backend = load_backend("openai:http://127.0.0.1:9/v1#m", max_retries=0, timeout=2)
    with pytest.raises(CyberslmError, match="request failed"):
        backend.generate([_chat("hi")], GenerationConfig())
