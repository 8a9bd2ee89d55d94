"""Convert a Hugging Face llama / qwen2 / qwen3 folder (safetensors) to one GGUF file, with the `gguf` package.

llama.cpp's convert_hf_to_gguf.py is the reference; this follows it for the three architectures cyberslm
fine-tunes, so the file loads in llama.cpp, Ollama and transformers (`from_pretrained(dir, gguf_file=...)`):

- tensor names come from gguf's own TensorNameMap (the table convert_hf_to_gguf uses);
- llama's Q and K projections are permuted (LlamaModel.permute): llama.cpp's llama graph applies "normal"
  rope to interleaved pairs where HF rotates half-vectors. qwen2/qwen3 use NEOX rope: no permutation.
  transformers' GGUF loader undoes exactly this permutation for llama only;
- norms and other 1-D tensors stay F32; 2-D tensors get the requested type, falling back to F16 when a row
  is not a whole number of quantization blocks (as convert_hf_to_gguf does);
- the tokenizer is written as llama.cpp's "gpt2" (byte-level BPE) model: tokens in vocab order padded to
  config.vocab_size with [PADn], token types, merges, special ids, add_bos/eos flags and the chat template.

Only the types `gguf.quants` can produce in numpy are offered (QUANT_TYPES). K-quants (Q4_K_M, ...) need
llama.cpp's `llama-quantize`; `llama_quantize_command` spells out that step.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

from cyberslm.errors import CyberslmError

ARCHITECTURES = {"llama": "LLAMA", "qwen2": "QWEN2", "qwen3": "QWEN3"}  # config.model_type -> gguf MODEL_ARCH name
FLOAT_TYPES = {"f32": "F32", "f16": "F16", "bf16": "BF16"}
# The legacy block quants gguf.quants implements quantize_blocks for in pure numpy. (It also quantizes
# TQ1_0/TQ2_0 and MXFP4, which are for ternary BitNet and gpt-oss weights, not for these models.)
QUANT_TYPES = {"q8_0": "Q8_0", "q5_1": "Q5_1", "q5_0": "Q5_0", "q4_1": "Q4_1", "q4_0": "Q4_0"}
OUTTYPES = {**FLOAT_TYPES, **QUANT_TYPES}
# Types users ask for that only llama.cpp's C++ quantizer produces (importance-weighted K- and I-quants).
LLAMA_QUANTIZE_TYPES = ("q2_k", "q3_k_s", "q3_k_m", "q3_k_l", "q4_k_s", "q4_k_m", "q5_k_s", "q5_k_m", "q6_k",
                        "iq2_xxs", "iq2_xs", "iq3_xxs", "iq3_s", "iq4_nl", "iq4_xs")
FILE_TYPES = {"f32": "ALL_F32", "f16": "MOSTLY_F16", "bf16": "MOSTLY_BF16", "q8_0": "MOSTLY_Q8_0",
              "q5_1": "MOSTLY_Q5_1", "q5_0": "MOSTLY_Q5_0", "q4_1": "MOSTLY_Q4_1", "q4_0": "MOSTLY_Q4_0"}

# The pre-tokenizer split regexes llama.cpp recognises, by the name it stores in tokenizer.ggml.pre.
_QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_LLAMA3_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                 r"|\s*[\r\n]+|\s+(?!\S)|\s+")
_SPLITS = {_QWEN2_SPLIT: "qwen2", _LLAMA3_SPLIT: "llama-bpe"}


def llama_quantize_command(f16_path: str | Path, outtype: str) -> str:
    """The llama.cpp command that turns an f16 GGUF into a K-quant (not something the gguf package can do)."""
    f16_path = Path(f16_path)
    out = f16_path.with_name(f16_path.stem.removesuffix(".f16").removesuffix("-f16") + f"-{outtype.upper()}.gguf")
    return f"llama-quantize {f16_path} {out} {outtype.upper()}"


def load_hparams(model_dir: Path) -> dict:
    """config.json as a dict, checked to be an architecture this converter handles."""
    config_file = model_dir / "config.json"
    if not config_file.is_file():
        raise CyberslmError(f"{model_dir}: no config.json (expected a Hugging Face model folder)")
    try:
        hparams = json.loads(config_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CyberslmError(f"{config_file}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    model_type = hparams.get("model_type")
    if model_type not in ARCHITECTURES:
        raise CyberslmError(f"{config_file}: model_type {model_type!r} is not supported for GGUF export "
                            f"(supported: {', '.join(ARCHITECTURES)}); use llama.cpp's convert_hf_to_gguf.py")
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"):
        if key not in hparams:
            raise CyberslmError(f"{config_file}: missing field {key!r}")
    return hparams


def _rope(hparams: dict) -> tuple[float, dict]:
    """(rope theta, rope scaling dict or {}) from either transformers 5 `rope_parameters` or older keys."""
    params = dict(hparams.get("rope_parameters") or {})
    scaling = dict(hparams.get("rope_scaling") or {})
    theta = params.get("rope_theta", hparams.get("rope_theta", 10000.0))
    kind = params.get("rope_type") or scaling.get("rope_type") or scaling.get("type") or "default"
    if kind == "default":
        return float(theta), {}
    return float(theta), {**scaling, **params, "rope_type": kind}


def _llama3_rope_factors(scaling: dict, theta: float, head_dim: int) -> np.ndarray:
    """The rope_freqs tensor llama.cpp expects for Llama 3.1+ scaling (LlamaModel.generate_extra_tensors)."""
    factor = scaling.get("factor", 8.0)
    low, high = scaling.get("low_freq_factor", 1.0), scaling.get("high_freq_factor", 4.0)
    old_ctx = scaling.get("original_max_position_embeddings", 8192)
    low_wavelen, high_wavelen = old_ctx / low, old_ctx / high
    out = []
    for freq in 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim)):
        wavelen = 2 * math.pi / freq
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1 / ((1 - smooth) / factor + smooth))
    return np.asarray(out, dtype=np.float32)


def permute_qk(weights: np.ndarray, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """convert_hf_to_gguf's LlamaModel.permute: HF half-rotation layout -> llama.cpp interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _iter_tensors(model_dir: Path):
    """(name, float32 numpy array) for every tensor in the folder's safetensors files, one at a time."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    if not files:
        raise CyberslmError(f"{model_dir}: no *.safetensors weights (safetensors only; merge an adapter first)")
    for file in files:
        with safe_open(str(file), framework="pt") as handle:
            for name in handle.keys():
                yield name, handle.get_tensor(name).float().numpy()


def _tokenizer_pre(tokenizer_json: dict, where: Path) -> str:
    """llama.cpp's tokenizer.ggml.pre name for this byte-level BPE pre-tokenizer."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre]) if pre.get("type") == "Sequence" else [pre]
    for step in steps:
        if step.get("type") == "Split":
            name = _SPLITS.get((step.get("pattern") or {}).get("Regex"))
            if name:
                return name
    types = [s.get("type") for s in steps]
    if types == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if types == ["Digits", "ByteLevel"] and steps[0].get("individual_digits"):
        return "smollm"
    print(f"warning: {where}: unrecognised pre-tokenizer {types}; writing tokenizer.ggml.pre 'default'",
          file=sys.stderr)
    return "default"


def _looks_special(token: str) -> bool:
    """convert_hf_to_gguf's does_token_look_special, for added tokens not flagged special (<think> is not)."""
    return token in ("<pad>", "<mask>") or (token.startswith("<|") and token.endswith("|>"))


def add_tokenizer(writer, model_dir: Path, vocab_size: int) -> str | None:
    """Write the byte-level BPE vocabulary, merges, special ids and chat template; returns the template."""
    import gguf

    tokenizer_file = model_dir / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise CyberslmError(f"{model_dir}: no tokenizer.json (a fast byte-level BPE tokenizer is required)")
    tok = json.loads(tokenizer_file.read_text(encoding="utf-8"))
    model = tok.get("model") or {}
    if model.get("type") != "BPE" or model.get("byte_fallback") or (tok.get("decoder") or {}).get("type") != "ByteLevel":
        raise CyberslmError(f"{tokenizer_file}: only byte-level BPE tokenizers (Qwen, Llama 3, SmolLM2) are "
                            "supported; use llama.cpp's convert_hf_to_gguf.py for sentencepiece vocabularies")
    by_id = {index: token for token, index in model["vocab"].items()}
    added = {item["id"]: item for item in tok.get("added_tokens") or []}
    by_id.update({index: item["content"] for index, item in added.items()})
    if by_id and max(by_id) >= vocab_size:
        raise CyberslmError(f"{tokenizer_file}: token id {max(by_id)} is beyond config.json vocab_size {vocab_size}")

    tokens, types = [], []
    for index in range(vocab_size):
        if index not in by_id:  # embedding rows past the tokenizer (Qwen pads to a multiple of 128)
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif index in added:
            token = by_id[index]
            special = added[index].get("special") or _looks_special(token)
            tokens.append(token)
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.NORMAL)

    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(_tokenizer_pre(tok, tokenizer_file))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=len(tokens))
    special.add_to_gguf(writer, quiet=True)
    template = special.chat_template
    if isinstance(template, list):  # named templates (default, tool_use, ...): the default one is the chat format
        template = next((t.get("template") for t in template if t.get("name") == "default"), None)
    return template


def _tensor_data(name: str, data: np.ndarray, outtype: str):
    """(array to write, raw GGML type or None): F32 for 1-D, else the requested type (F16 if blocks don't fit)."""
    import gguf
    from gguf.quants import QuantError, quantize

    if data.ndim <= 1 or outtype == "f32" or name.endswith("_norm.weight"):
        return data.astype(np.float32), None
    if outtype == "f16":
        return data.astype(np.float16), None
    qtype = gguf.GGMLQuantizationType[OUTTYPES[outtype]]
    try:
        return quantize(data, qtype), qtype
    except QuantError:  # a row length that is not a multiple of the block size (32)
        return data.astype(np.float16), None


def convert(model_dir: str | Path, out_file: str | Path, outtype: str = "f16", progress: bool = True) -> dict:
    """Write MODEL_DIR as a GGUF file; returns a summary {architecture, tensors, outtype, bytes, chat_template}."""
    import gguf

    model_dir, out_file = Path(model_dir), Path(out_file)
    outtype = outtype.lower()
    if outtype in LLAMA_QUANTIZE_TYPES:
        raise CyberslmError(f"--outtype {outtype}: K/I-quants need llama.cpp; export f16 first, then run: "
                            + llama_quantize_command(out_file.with_suffix(".f16.gguf"), outtype))
    if outtype not in OUTTYPES:
        raise CyberslmError(f"--outtype {outtype!r} is not supported (choose from {', '.join(OUTTYPES)})")
    if not model_dir.is_dir():
        raise CyberslmError(f"{model_dir}: not a folder")
    hp = load_hparams(model_dir)
    arch = gguf.MODEL_ARCH[ARCHITECTURES[hp["model_type"]]]
    n_layers, n_head = hp["num_hidden_layers"], hp["num_attention_heads"]
    n_head_kv = hp.get("num_key_value_heads") or n_head
    head_dim = hp.get("head_dim") or hp["hidden_size"] // n_head
    theta, scaling = _rope(hp)

    out_file.parent.mkdir(parents=True, exist_ok=True)
    partial = out_file.with_name(out_file.name + ".partial")  # renamed at the end: no half-written .gguf
    writer = gguf.GGUFWriter(partial, gguf.MODEL_ARCH_NAMES[arch], use_temp_file=True)
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(model_dir.name)
    writer.add_vocab_size(hp["vocab_size"])
    writer.add_context_length(hp.get("max_position_embeddings", 4096))
    writer.add_embedding_length(hp["hidden_size"])
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(hp["intermediate_size"])
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_freq_base(theta)
    writer.add_layer_norm_rms_eps(hp.get("rms_norm_eps", 1e-6))
    if hp.get("head_dim"):  # as convert_hf_to_gguf: explicit head sizes (Qwen3's 128 differs from hidden/heads)
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    if arch == gguf.MODEL_ARCH.LLAMA:
        writer.add_rope_dimension_count(head_dim)
    kind = scaling.get("rope_type")
    if kind == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(scaling["factor"])
    elif kind == "yarn":
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(scaling["factor"])
        writer.add_rope_scaling_orig_ctx_len(scaling["original_max_position_embeddings"])
    elif kind not in (None, "llama3"):
        raise CyberslmError(f"{model_dir / 'config.json'}: rope type {kind!r} is not supported for GGUF export")
    writer.add_file_type(gguf.LlamaFileType[FILE_TYPES[outtype]])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    chat_template = add_tokenizer(writer, model_dir, hp["vocab_size"])

    names = gguf.get_tensor_name_map(arch, n_layers)
    tied = hp.get("tie_word_embeddings", False)
    count = 0
    if kind == "llama3":
        writer.add_tensor("rope_freqs.weight", _llama3_rope_factors(scaling, theta, head_dim))
        count += 1
    from rich.progress import Progress

    try:
        with Progress(disable=not progress, transient=True) as bar:
            task = bar.add_task(f"converting to {outtype}", total=None)
            for name, data in _iter_tensors(model_dir):
                if name.endswith("rotary_emb.inv_freq") or (tied and name == "lm_head.weight"):
                    continue
                new_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
                if new_name is None:
                    raise CyberslmError(f"{model_dir}: tensor {name!r} has no GGUF name for {hp['model_type']}")
                if arch == gguf.MODEL_ARCH.LLAMA and name.endswith(("q_proj.weight", "q_proj.bias")):
                    data = permute_qk(data, n_head, n_head)
                elif arch == gguf.MODEL_ARCH.LLAMA and name.endswith(("k_proj.weight", "k_proj.bias")):
                    data = permute_qk(data, n_head, n_head_kv)
                array, raw_dtype = _tensor_data(new_name, data, outtype)
                writer.add_tensor(new_name, array, raw_dtype=raw_dtype)
                count += 1
                bar.advance(task)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file(progress=False)
    except BaseException:  # bad tensor, Ctrl-C, disk full: leave no half-written file behind
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    writer.close()
    partial.replace(out_file)
    return {"architecture": gguf.MODEL_ARCH_NAMES[arch], "tensors": count, "outtype": outtype,
            "bytes": out_file.stat().st_size, "chat_template": chat_template}
