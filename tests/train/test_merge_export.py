"""Merge a LoRA adapter and export GGUF, on tiny random Qwen3 and Llama models built here (no download).

Each check compares real numbers: adapter logits vs merged logits, and merged logits vs the logits of the
GGUF file loaded back by transformers' own GGUF reader (which undoes llama's Q/K permutation).
"""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from .conftest import tiny_bpe_tokenizer

torch = pytest.importorskip("torch")
gguf = pytest.importorskip("gguf")

SENTENCE = "CVE-2024-1234: SQL injection in the login form lets attackers read the users table."
CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
          "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
LLAMA3 = ("{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
          "{{ m['content'] }}<|eot_id|>{% endfor %}"
          "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}")
TEXTS = ["Cross-site scripting in the search page of the admin panel.",
         "A buffer overflow in the parser allows remote code execution.",
         "SQL injection in the login form lets attackers read the users table.",
         "Improper authentication lets attackers bypass the password check."] * 20


def _tokenizer(specials: list[str], eos: str, pad: str, template: str, bos: str | None = None):
    return tiny_bpe_tokenizer(TEXTS, specials, eos, pad, template, bos=bos, vocab_size=320)


def _build(folder, arch: str):
    """A tiny random model + tokenizer saved as safetensors, like a real base model folder."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    if arch == "qwen3":
        tok = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "<|im_end|>", "<|endoftext|>", CHATML)
        # head_dim 128: transformers' GGUF reader takes Qwen3's head_dim from the config default (128)
        cfg = Qwen3Config(vocab_size=len(tok) + 5, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=128, max_position_embeddings=256,
                          tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        model = Qwen3ForCausalLM(cfg)
    else:
        specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]
        tok = _tokenizer(specials, "<|eot_id|>", "<|end_of_text|>", LLAMA3, bos="<|begin_of_text|>")
        cfg = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=96, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                          tie_word_embeddings=False, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
        model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # random norms, so a wrong norm mapping cannot hide behind all-ones weights
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def _adapter(base_dir, out_dir):
    from transformers import AutoModelForCausalLM

    return _adapter_on(AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32), out_dir)


def _adapter_on(model, out_dir):
    """A random (non-zero B) LoRA adapter on every linear layer of MODEL, saved to OUT_DIR."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(1)
    config = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, task_type="CAUSAL_LM",
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(str(out_dir))
    return out_dir


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits[0].float()


def _rounded(model_dir, qtype_name: str):
    """The HF model with every 2-D weight sent through gguf's quantize/dequantize (blocks run along rows)."""
    from gguf.quants import dequantize, quantize
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32)
    qtype = gguf.GGMLQuantizationType[qtype_name]
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.copy_(torch.from_numpy(dequantize(quantize(p.numpy(), qtype), qtype)))
    return model


@pytest.fixture(scope="module", params=["qwen3", "llama"])
def merged(request, tmp_path_factory):
    """(arch, merged folder, token ids of SENTENCE, logits of base+adapter on them)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from typer.testing import CliRunner

    from cyberslm.cli import cli

    arch = request.param
    root = tmp_path_factory.mktemp(arch)
    base = _build(root / "base", arch)
    adapter = _adapter(base, root / "adapter")
    ids = AutoTokenizer.from_pretrained(str(base)).encode(SENTENCE, add_special_tokens=False)
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(base), dtype=torch.float32),
                                           str(adapter))
    base_logits = _logits(peft_model.get_base_model().__class__.from_pretrained(str(base)), ids)
    expected = _logits(peft_model, ids)
    assert (expected - base_logits).abs().max() > 1e-3  # the adapter really changes the model
    result = CliRunner().invoke(cli, ["train", "merge", str(adapter), "-o", str(root / "merged"), "--dtype", "fp32"])
    assert result.exit_code == 0, result.output
    return arch, root / "merged", ids, expected


def test_merge_matches_adapter(merged):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, out, ids, expected = merged
    assert list(out.glob("*.safetensors")) and not list(out.glob("*.bin"))
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32)
    assert not any("lora" in name for name, _ in model.named_parameters())
    torch.testing.assert_close(_logits(model, ids), expected, atol=1e-4, rtol=1e-4)
    assert "<|" in AutoTokenizer.from_pretrained(str(out)).chat_template


@pytest.mark.parametrize("outtype,tolerance", [("f32", 1e-5), ("f16", 5e-3), ("bf16", 2e-2),
                                                ("q8_0", 0.1), ("q4_0", 0.8)])
def test_gguf_round_trip(merged, tmp_path, outtype, tolerance):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from typer.testing import CliRunner

    from cyberslm.cli import cli

    arch, model_dir, ids, expected = merged
    out = tmp_path / f"model-{outtype}.gguf"
    result = CliRunner().invoke(cli, ["export", "gguf", str(model_dir), "-o", str(out), "--outtype", outtype,
                                      "--modelfile"])
    assert result.exit_code == 0, result.output

    reader = gguf.GGUFReader(out)
    assert reader.fields["general.architecture"].contents() == arch
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    n_expected = 2 + 9 * 2 + (2 * 2 if arch == "qwen3" else 0) + (0 if arch == "qwen3" else 1)  # qk norms; output
    assert len(types) == n_expected
    assert types["blk.0.attn_norm.weight"] == "F32"
    assert types["blk.1.ffn_down.weight"] == outtype.upper()
    assert ("output.weight" in types) == (arch == "llama")
    assert reader.fields["tokenizer.ggml.model"].contents() == "gpt2"

    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file=out.name, dtype=torch.float32)
    got = _logits(loaded, ids)
    rel = ((got - expected).norm() / expected.norm()).item()
    assert rel < tolerance, f"{arch} {outtype}: relative logit error {rel:.2e}"
    # exact check: the file equals the merged model with its matrices rounded to the type (norms stay F32)
    assert got.allclose(_logits(_rounded(model_dir, outtype.upper()), ids), atol=1e-5)

    original = AutoTokenizer.from_pretrained(str(model_dir))
    tok = AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=out.name)
    assert tok.encode(SENTENCE, add_special_tokens=False) == ids
    assert tok.decode(ids) == SENTENCE
    assert tok.chat_template == original.chat_template
    assert tok.eos_token == original.eos_token

    modelfile = (tmp_path / "Modelfile").read_text()
    assert modelfile.startswith(f"FROM ./{out.name}\n")
    marker = "<|im_start|>" if arch == "qwen3" else "<|start_header_id|>"
    assert 'TEMPLATE """' in modelfile and marker in modelfile and "PARAMETER stop" in modelfile


def test_qk_layout(merged, tmp_path):
    """llama's Q/K are stored in llama.cpp's interleaved rope layout; qwen3 (NEOX rope) keeps HF's."""
    from safetensors.torch import load_file

    from cyberslm.train.gguf_writer import convert, permute_qk

    arch, model_dir, _, _ = merged
    out = tmp_path / "m.gguf"
    convert(model_dir, out, "f32", progress=False)
    hf = load_file(str(next(model_dir.glob("*.safetensors"))))["model.layers.0.self_attn.k_proj.weight"].numpy()
    stored = next(t for t in gguf.GGUFReader(out).tensors if t.name == "blk.0.attn_k.weight").data
    if arch == "llama":
        assert not (stored == hf).all()
        assert (stored == permute_qk(hf, 4, 2)).all()
    else:
        assert (stored == hf).all()


def test_merge_onto_gguf_base(merged, tmp_path):
    """A GGUF base (as `train sft` uses for the bundled SmolLM2): PEFT records only its folder."""
    import json

    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cyberslm.train.gguf_writer import convert
    from cyberslm.train.merge import merge

    _, model_dir, ids, _ = merged
    convert(model_dir, tmp_path / "base" / "base.gguf", "f32", progress=False)
    base = AutoModelForCausalLM.from_pretrained(str(tmp_path / "base"), gguf_file="base.gguf", dtype=torch.float32)
    adapter = _adapter_on(base, tmp_path / "adapter")
    expected = _logits(PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(tmp_path / "base"), gguf_file="base.gguf", dtype=torch.float32),
        str(adapter)), ids)
    out = merge(adapter, tmp_path / "out", dtype="fp32")
    assert "quantization_config" not in json.loads((out / "config.json").read_text())
    got = _logits(AutoModelForCausalLM.from_pretrained(str(out), dtype=torch.float32), ids)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    assert AutoTokenizer.from_pretrained(str(out)).chat_template


def test_llama_cpp_reads_export(merged, tmp_path):
    """Optional: the real llama.cpp (llama-cpp-python, not a dependency) gives the same tokens and logits."""
    llama_cpp = pytest.importorskip("llama_cpp")
    import numpy as np
    from transformers import AutoModelForCausalLM

    from cyberslm.train.gguf_writer import convert

    _, model_dir, ids, _ = merged
    reference = _logits(AutoModelForCausalLM.from_pretrained(str(model_dir), dtype=torch.float32), ids).numpy()
    convert(model_dir, tmp_path / "m.gguf", "f32", progress=False)
    llm = llama_cpp.Llama(model_path=str(tmp_path / "m.gguf"), logits_all=True, n_ctx=128, verbose=False)
    assert llm.tokenize(SENTENCE.encode(), add_bos=False) == ids
    llm.eval(ids)
    got = np.array(llm.scores[: len(ids)])
    assert np.linalg.norm(got - reference) / np.linalg.norm(reference) < 5e-3


def test_qwen2_with_biases_round_trips(tmp_path):
    """Qwen2/2.5 has q/k/v biases and an added non-special token (like Qwen3's <think>): USER_DEFINED, not CONTROL."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from cyberslm.train.gguf_writer import convert

    tok = _tokenizer(["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "<|im_end|>", "<|endoftext|>", CHATML)
    tok.add_tokens(["<think>"])
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=96,
                                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                         max_position_embeddings=256, tie_word_embeddings=True))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):
                p.normal_(0, 0.5)
    model.save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    convert(tmp_path / "m", tmp_path / "m.gguf", "f32", progress=False)

    reader = gguf.GGUFReader(tmp_path / "m.gguf")
    assert "blk.0.attn_q.bias" in {t.name for t in reader.tensors}
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    assert types[tok.convert_tokens_to_ids("<think>")] == gguf.TokenType.USER_DEFINED
    assert types[tok.convert_tokens_to_ids("<|im_end|>")] == gguf.TokenType.CONTROL
    ids = tok.encode("<think>" + SENTENCE, add_special_tokens=False)
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path), gguf_file="m.gguf", dtype=torch.float32)
    torch.testing.assert_close(_logits(loaded, ids), _logits(model.float(), ids), atol=1e-4, rtol=1e-4)
    assert AutoTokenizer.from_pretrained(str(tmp_path), gguf_file="m.gguf").encode(
        "<think>" + SENTENCE, add_special_tokens=False) == ids


def test_bad_inputs_one_line_errors(merged, tmp_path):
    import json

    from cyberslm.errors import CyberslmError
    from cyberslm.train.gguf_writer import convert
    from cyberslm.train.merge import merge

    _, model_dir, _, _ = merged
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CyberslmError, match="no config.json"):
        convert(empty, tmp_path / "x.gguf")
    gpt2 = tmp_path / "gpt2"
    gpt2.mkdir()
    (gpt2 / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(CyberslmError, match="model_type 'gpt2' is not supported"):
        convert(gpt2, tmp_path / "x.gguf")
    with pytest.raises(CyberslmError, match="llama-quantize .* Q4_K_M"):
        convert(model_dir, tmp_path / "x.gguf", "q4_k_m")
    with pytest.raises(CyberslmError, match="adapter_config.json"):
        merge(empty, tmp_path / "out")
    other = tmp_path / "other"  # same architecture, other width: the adapter cannot fit
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(str(model_dir))
    config.hidden_size = 32
    AutoModelForCausalLM.from_config(config).save_pretrained(other)
    with pytest.raises(CyberslmError, match="adapter does not fit base"):
        merge(model_dir.parent / "adapter", tmp_path / "out", base=str(other), dtype="fp32")
    odd = tmp_path / "odd"
    shutil.copytree(model_dir, odd)
    from safetensors.torch import save_file

    save_file({"model.mystery.weight": torch.zeros(4, 4)}, str(odd / "extra.safetensors"))
    with pytest.raises(CyberslmError, match="'model.mystery.weight' has no GGUF name"):
        convert(odd, tmp_path / "x.gguf", progress=False)
    assert not list(tmp_path.glob("x.gguf*"))  # no half-written file left

    # the real CLI: one line on stderr, exit status 2
    run = subprocess.run([sys.executable, "-m", "cyberslm.cli", "export", "gguf", str(gpt2), "-o",
                          str(tmp_path / "x.gguf")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and run.stderr.startswith("error: ") and "gpt2" in run.stderr


def test_modelfile_refuses_unknown_template():
    from cyberslm.errors import CyberslmError
    from cyberslm.train.export import modelfile_text

    text = modelfile_text("m.gguf", CHATML, 0.2, "dir")
    assert 'PARAMETER stop "<|im_end|>"' in text and "PARAMETER temperature 0.2" in text
    with pytest.raises(CyberslmError, match="TEMPLATE"):
        modelfile_text("m.gguf", "{{ messages }}", 0.2, "dir")
