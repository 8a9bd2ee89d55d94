"""`cyberslm train sft RECIPE`: LoRA/QLoRA supervised fine-tuning with TRL's SFTTrainer and PEFT.

Loss is on assistant turns only. We compute that mask ourselves instead of `assistant_only_loss=True`:
TRL's flag needs `{% generation %}` markers in the chat template, which most released templates (Qwen3,
SmolLM2, Llama 3.2) lack. `tokenize_conversation` renders the conversation up to each assistant turn
with the model's own template and sets the labels of everything else to -100; TRL uses a `labels`
column as is (and keeps it through packing and truncation).

Works the same under `accelerate launch -m cyberslm.cli train sft RECIPE` (Trainer handles the
distributed setup). Checkpoints land in OUTPUT/checkpoint-N; `--resume` continues from the last one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from cyberslm.errors import CyberslmError

SMOLLM2_NAMES = {"smollm2", "smollm2-gguf", "hf:smollm2"}


def resolve_model(model: dict, allow_download: bool) -> tuple[str, dict]:
    """(source for from_pretrained, extra kwargs): a local folder, a .gguf file or (opt-in) a hub id."""
    name = str(model.get("name_or_path") or "")
    if not name:
        raise CyberslmError("recipe model.name_or_path is empty")
    gguf = model.get("gguf_file")
    if name in SMOLLM2_NAMES:
        from cyberslm.models.hf import smollm2_gguf_path

        path = smollm2_gguf_path()
        return str(path.parent), {"gguf_file": path.name}
    path = Path(name).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise CyberslmError(f"{path}: expected a .gguf file or a folder of safetensors")
        return str(path.parent), {"gguf_file": path.name}
    if path.is_dir():
        if gguf:
            return str(path), {"gguf_file": gguf}
        if not any(path.glob("*.safetensors")):
            raise CyberslmError(f"{path}: no *.safetensors weights in this folder (safetensors only)")
        return str(path), {"use_safetensors": True}
    if not allow_download:
        raise CyberslmError(
            f"model {name!r} is not a local folder or .gguf; pass --allow-download to fetch it from the hub"
        )
    return name, ({"gguf_file": gguf} if gguf else {"use_safetensors": True})


def tokenize_conversation(tokenizer, messages: list[dict], max_length: int | None = None) -> dict[str, list[int]]:
    """input_ids and labels for one chat; labels are -100 everywhere except the assistant turns' tokens."""
    if not tokenizer.chat_template:
        raise CyberslmError("the tokenizer has no chat template; set one on the base model")

    def render(msgs: list[dict], generation_prompt: bool) -> list[int]:
        if not msgs:
            return []
        ids = tokenizer.apply_chat_template(msgs, tokenize=True, add_generation_prompt=generation_prompt)
        return list(ids["input_ids"] if hasattr(ids, "keys") else ids)

    input_ids = render(messages, False)
    labels = [-100] * len(input_ids)
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt, upto = render(messages[:i], True), render(messages[: i + 1], False)
        if input_ids[: len(prompt)] != prompt or input_ids[: len(upto)] != upto:
            raise CyberslmError("the chat template does not render conversations prefix-consistently")
        labels[len(prompt) : len(upto)] = input_ids[len(prompt) : len(upto)]
    if max_length:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return {"input_ids": input_ids, "labels": labels}


def load_train_dataset(path: Path, tokenizer, max_length: int | None):
    """The chat JSONL written by `cyberslm data sft` as a tokenized datasets.Dataset (input_ids, labels)."""
    from datasets import Dataset

    if not path.is_file():
        raise CyberslmError(f"{path}: no training file; build it with `cyberslm data sft --recipe RECIPE -o {path}`")
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                messages = json.loads(line)["messages"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise CyberslmError(f"{path}: line {n}: expected a JSON object with 'messages'") from exc
            row = tokenize_conversation(tokenizer, messages, max_length)
            if any(t != -100 for t in row["labels"]):
                rows.append(row)
    if not rows:
        raise CyberslmError(f"{path}: no usable conversations (need an assistant turn)")
    return Dataset.from_list(rows)


def _lora_config(lora: dict):
    from peft import LoraConfig

    return LoraConfig(
        r=int(lora.get("r", 16)), lora_alpha=int(lora.get("alpha", 32)), lora_dropout=float(lora.get("dropout", 0.0)),
        target_modules=lora.get("target_modules") or "all-linear", task_type="CAUSAL_LM", bias="none",
    )


def _load_model(source: str, kwargs: dict, model: dict):
    import torch
    from transformers import AutoModelForCausalLM

    init = dict(kwargs, trust_remote_code=False)
    init["dtype"] = getattr(torch, str(model.get("dtype") or "float32"))
    if model.get("attn_implementation"):
        init["attn_implementation"] = model["attn_implementation"]
    quant = model.get("quantization")
    if quant:
        if quant != "4bit":
            raise CyberslmError(f"recipe model.quantization={quant!r}: only null or 4bit (QLoRA) are supported")
        if not torch.cuda.is_available():
            raise CyberslmError("QLoRA (model.quantization=4bit) needs a CUDA GPU; bitsandbytes 4-bit does not run on CPU")
        from transformers import BitsAndBytesConfig

        init["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=init["dtype"],
        )
    try:
        loaded = AutoModelForCausalLM.from_pretrained(source, **init)
    except (OSError, ImportError) as exc:
        raise CyberslmError(f"{source}: cannot load model: {str(exc).splitlines()[0]}") from exc
    if "gguf_file" in init:
        # transformers dequantizes GGUF weights into plain tensors but still tags the model as GGUF-quantized,
        # which Trainer refuses to train; the tensors are ordinary fp32/bf16, so drop the tag.
        loaded.hf_quantizer = None
        loaded.is_quantized = False
        if hasattr(loaded.config, "quantization_config"):
            del loaded.config.quantization_config
    if quant:
        from peft import prepare_model_for_kbit_training

        loaded = prepare_model_for_kbit_training(loaded)
    return loaded


def _sft_config(training: dict, output_dir: Path):
    import dataclasses

    from trl import SFTConfig

    fields = {f.name for f in dataclasses.fields(SFTConfig)}
    for key in training:
        if key not in fields:
            raise CyberslmError(f"recipe training.{key}: not a trl.SFTConfig field")
    settings: dict[str, Any] = {"report_to": [], "logging_first_step": True, "save_strategy": "steps"}
    settings.update(training)
    settings.update(output_dir=str(output_dir))
    try:
        return SFTConfig(**settings)
    except (ValueError, TypeError) as exc:
        raise CyberslmError(f"recipe training section: {' '.join(str(exc).split())}") from exc


def _log_callback(path: Path):
    """A TrainerCallback appending every log_history entry to a JSONL as training goes."""
    from transformers import TrainerCallback

    from cyberslm.io import JsonlAppender

    class LogToJsonl(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                with JsonlAppender(path) as out:
                    out.write({"step": state.global_step, "epoch": state.epoch, **logs})

    return LogToJsonl()


def plot_loss(log_path: Path, png: Path) -> Path | None:
    """Training loss against step from the JSONL log, as a PNG; None when nothing was logged."""
    from cyberslm.io import JsonlAppender

    points = [(r["step"], r["loss"]) for r in JsonlAppender(log_path).read() if "loss" in r]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p[0] for p in points], [p[1] for p in points], marker=".")
    ax.set(xlabel="step", ylabel="training loss", title=png.parent.name)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    return png


def train_sft(recipe: dict, output_dir: Path, resume: bool = False, allow_download: bool = False,
              train_file: Path | None = None, callbacks: list | None = None) -> dict:
    """Run one SFT job; returns {"output_dir", "global_step", "train_loss", "resumed_from", ...}."""
    import yaml
    from transformers import AutoTokenizer
    from transformers.trainer_utils import get_last_checkpoint
    from trl import SFTTrainer

    output_dir = Path(output_dir)
    last = get_last_checkpoint(str(output_dir)) if output_dir.is_dir() else None
    if last and not resume:
        raise CyberslmError(f"{output_dir}: has checkpoints ({Path(last).name}); pass --resume or a new --output-dir")
    model_cfg, training = recipe.get("model") or {}, dict(recipe.get("training") or {})
    source, kwargs = resolve_model(model_cfg, allow_download)
    if training.get("bf16"):
        import torch

        if not torch.cuda.is_available():
            raise CyberslmError("recipe training.bf16=true needs a GPU; use --set training.bf16=false on CPU")
    args = _sft_config(training, output_dir)

    tok_kwargs = {k: v for k, v in kwargs.items() if k == "gguf_file"}
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, **tok_kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    data_path = Path(train_file or (recipe.get("data") or {}).get("train_file") or "sft/train.jsonl")
    dataset = load_train_dataset(data_path, tokenizer, None if args.packing else args.max_length)
    model = _load_model(source, kwargs, model_cfg)

    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False), encoding="utf-8")
    log_path = output_dir / "train_log.jsonl"
    trainer = SFTTrainer(
        model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
        peft_config=_lora_config(recipe.get("lora") or {}), callbacks=[_log_callback(log_path), *(callbacks or [])],
    )
    result = trainer.train(resume_from_checkpoint=True if last else None)
    trainer.save_model(str(output_dir))  # the LoRA adapter (safetensors) + tokenizer
    png = plot_loss(log_path, output_dir / "loss.png") if trainer.is_world_process_zero() else None
    return {
        "output_dir": str(output_dir), "global_step": trainer.state.global_step, "train_loss": result.training_loss,
        "examples": len(dataset), "resumed_from": Path(last).name if last else None,
        "log": str(log_path), "plot": str(png) if png else None,
    }


def sft_command(
    recipe: str = typer.Argument(..., help="Recipe YAML path or name in recipes/ (e.g. cybersecqwen-4b)."),
    overrides: list[str] = typer.Option([], "--set", help="Override a recipe key, e.g. --set lora.r=16; repeatable."),
    output_dir: Path = typer.Option(None, "--output-dir", help="Where checkpoints and the adapter go (default: runs/RECIPE)."),
    train_file: Path = typer.Option(None, "--train-file", help="Chat JSONL to train on (default: the recipe data.train_file)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the last checkpoint in the output dir."),
    allow_download: bool = typer.Option(False, "--allow-download", help="Allow fetching a hub model id."),
) -> None:
    """LoRA/QLoRA SFT of a base model on a `cyberslm data sft` set (loss on assistant turns only)."""
    from cyberslm.train.recipe import load_recipe

    loaded = load_recipe(recipe, overrides)
    out = output_dir or Path("runs") / str(loaded["name"])
    summary = train_sft(loaded, out, resume=resume, allow_download=allow_download, train_file=train_file)
    typer.echo(json.dumps(summary, indent=2))
