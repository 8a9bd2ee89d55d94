"""`cyberslm train merge ADAPTER_DIR -o OUT_DIR`: fold a PEFT LoRA adapter into its base, save safetensors.

Merged is the default way to ship a fine-tune: llama.cpp/Ollama need one set of weights, and vLLM serving
an unmerged adapter needs `--max-lora-rank 64` for our r=64 recipe. The tokenizer (with its chat template)
comes from the adapter folder when training saved one there, else from the base.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from cyberslm.errors import CyberslmError

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}
SMOLLM2_NAMES = {"smollm2", "smollm2-gguf", "hf:smollm2"}  # the bundled SmolLM2 GGUF, as in `train sft`


def _recipe_gguf(adapter_dir: Path) -> str | None:
    """model.gguf_file from the recipe.yaml `train sft` saves beside the adapter, if any."""
    recipe = adapter_dir / "recipe.yaml"
    if not recipe.is_file():
        return None
    import yaml

    try:
        model = (yaml.safe_load(recipe.read_text(encoding="utf-8")) or {}).get("model") or {}
    except yaml.YAMLError:
        return None
    name = model.get("gguf_file") or model.get("name_or_path") or ""
    return Path(str(name)).name if str(name).endswith(".gguf") else None


def base_source(adapter_dir: Path, base: str | None) -> tuple[str, dict]:
    """(folder for from_pretrained, extra kwargs) for the base model: --base or the adapter's own record."""
    config_file = adapter_dir / "adapter_config.json"
    if not config_file.is_file():
        raise CyberslmError(f"{adapter_dir}: no adapter_config.json (expected a PEFT LoRA adapter folder)")
    if base is None:
        try:
            base = json.loads(config_file.read_text(encoding="utf-8")).get("base_model_name_or_path")
        except json.JSONDecodeError as exc:
            raise CyberslmError(f"{config_file}: not valid JSON ({exc.msg})") from None
        if not base:
            raise CyberslmError(f"{config_file}: no base_model_name_or_path; pass --base")
    if base in SMOLLM2_NAMES:
        from cyberslm.models.hf import smollm2_gguf_path

        base = str(smollm2_gguf_path())
    path = Path(base).expanduser()
    if path.is_file() and path.suffix == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    if path.is_dir() and not (path / "config.json").is_file():
        # A GGUF base: PEFT records only the folder; `train sft` also leaves recipe.yaml naming the file.
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        named = _recipe_gguf(adapter_dir)
        if named in ggufs or len(ggufs) == 1:
            return str(path), {"gguf_file": named if named in ggufs else ggufs[0]}
        raise CyberslmError(f"{path}: no config.json and {len(ggufs)} .gguf files (pass --base FILE.gguf)")
    if path.is_dir():
        if not any(path.glob("*.safetensors")):
            raise CyberslmError(f"{path}: no *.safetensors weights in this folder (safetensors only)")
        return str(path), {"use_safetensors": True}
    # A hub id: only what is already in the local Hugging Face cache (no network).
    return str(base), {"use_safetensors": True, "local_files_only": True}


def merge(adapter_dir: str | Path, out_dir: str | Path, base: str | None = None, dtype: str = "bf16") -> Path:
    """Load base + adapter, merge_and_unload(), save safetensors weights and tokenizer into OUT_DIR."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    if dtype not in DTYPES:
        raise CyberslmError(f"--dtype {dtype!r}: choose from {', '.join(DTYPES)}")
    source, kwargs = base_source(adapter_dir, base)
    if "gguf_file" in kwargs:  # plain float weights, so the merged model is an ordinary checkpoint
        from transformers import GgufConfig

        kwargs["quantization_config"] = GgufConfig(dequantize=True)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, DTYPES[dtype]),
                                                     trust_remote_code=False, **kwargs)
    except OSError as exc:
        raise CyberslmError(f"base model {source}: cannot load offline ({str(exc).splitlines()[0]})") from None
    try:
        model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as exc:  # shape mismatch: trained on another base
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CyberslmError(f"{adapter_dir}: adapter does not fit base {source} ({first[:200]})") from None
    merged = model.merge_and_unload()
    if getattr(merged, "hf_quantizer", None) is not None:
        # Loaded from a GGUF: the weights were dequantized above; drop the "quantized" marker that would
        # stop save_pretrained and would make the saved config.json claim GGUF quantization.
        merged.hf_quantizer = None
        merged.config.__dict__.pop("quantization_config", None)
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir)

    tokenizer_home = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else Path(source)
    tok_kwargs = {"gguf_file": kwargs["gguf_file"]} if tokenizer_home == Path(source) and "gguf_file" in kwargs else {}
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_home), trust_remote_code=False,
                                              local_files_only=True, **tok_kwargs)
    tokenizer.save_pretrained(out_dir)
    if not getattr(tokenizer, "chat_template", None):
        print(f"warning: {tokenizer_home} has no chat template; the merged model in {out_dir} has none either",
              file=sys.stderr)
    if not any(out_dir.glob("*.safetensors")):
        raise CyberslmError(f"{out_dir}: no safetensors written")
    return out_dir


def merge_command(
    adapter_dir: Annotated[Path, typer.Argument(help="PEFT LoRA adapter folder (adapter_config.json).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for the merged model.")],
    base: Annotated[str | None, typer.Option(help="Base model folder or .gguf; default: the adapter's "
                                                  "base_model_name_or_path.")] = None,
    dtype: Annotated[str, typer.Option(help="bf16, fp16 or fp32.")] = "bf16",
) -> None:
    """Merge a LoRA adapter into its base model and save it as safetensors with tokenizer and chat template."""
    out = merge(adapter_dir, output, base, dtype)
    typer.echo(f"wrote merged model to {out}; next: cyberslm export gguf {out} -o {out.name}.gguf --modelfile")
