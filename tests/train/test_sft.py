"""`cyberslm train sft` on a tiny random Qwen3: loss goes down, resume continues, the mask hides the prompt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoTokenizer, TrainerCallback

from cyberslm.errors import CyberslmError
from cyberslm.train.recipe import load_recipe
from cyberslm.train.sft import resolve_model, tokenize_conversation, train_sft


def tiny_recipe(tmp_path: Path, model_dir: str, **training) -> Path:
    settings = {
        "per_device_train_batch_size": 4, "max_length": 128, "packing": False, "learning_rate": 2e-2,
        "lr_scheduler_type": "constant", "max_steps": 20, "logging_steps": 1, "save_steps": 100,
        "seed": 0, "bf16": False, "use_cpu": True, "dataloader_num_workers": 0,
    }
    settings.update(training)
    recipe = {
        "model": {"name_or_path": model_dir, "dtype": "float32", "attn_implementation": "sdpa"},
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": ["q_proj", "v_proj", "up_proj", "down_proj"]},
        "training": settings,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(recipe), encoding="utf-8")  # JSON is valid YAML
    return path


def test_assistant_mask_hides_the_prompt(tiny_qwen3_dir):
    tok = AutoTokenizer.from_pretrained(tiny_qwen3_dir)
    messages = [{"role": "user", "content": "SQL injection in the login form"}, {"role": "assistant", "content": "CWE-89"}]
    row = tokenize_conversation(tok, messages)
    prompt = tok.apply_chat_template(messages[:1], tokenize=True, add_generation_prompt=True)
    prompt = list(prompt["input_ids"] if hasattr(prompt, "keys") else prompt)
    assert row["labels"][: len(prompt)] == [-100] * len(prompt)
    trained = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True) if lab != -100]
    assert tok.decode(trained).startswith("CWE-89")
    assert "SQL" not in tok.decode(trained)


def test_sft_lowers_loss_and_writes_log_plot_adapter(tiny_qwen3_dir, chat_jsonl, tmp_path):
    recipe = load_recipe(tiny_recipe(tmp_path, tiny_qwen3_dir))
    out = tmp_path / "run"
    summary = train_sft(recipe, out, train_file=Path(chat_jsonl))
    losses = [json.loads(line)["loss"] for line in open(out / "train_log.jsonl") if '"loss"' in line]
    assert summary["global_step"] == 20
    assert losses[-1] < losses[0] - 0.5, losses
    assert (out / "loss.png").stat().st_size > 1000
    assert (out / "adapter_model.safetensors").exists()


class StopAt(TrainerCallback):
    """Simulates a crash: raises once the trainer has finished `step` steps."""

    def __init__(self, step: int):
        self.step, self.seen = step, []

    def on_step_end(self, args, state, control, **kwargs):
        self.seen.append(state.global_step)
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_from_checkpoint(tiny_qwen3_dir, chat_jsonl, tmp_path):
    recipe = load_recipe(tiny_recipe(tmp_path, tiny_qwen3_dir, max_steps=6, save_steps=2))
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_sft(recipe, out, train_file=Path(chat_jsonl), callbacks=[StopAt(3)])
    assert (out / "checkpoint-2").is_dir()
    with pytest.raises(CyberslmError, match="--resume"):
        train_sft(recipe, out, train_file=Path(chat_jsonl))
    second = StopAt(-1)
    summary = train_sft(recipe, out, resume=True, train_file=Path(chat_jsonl), callbacks=[second])
    assert summary["resumed_from"] == "checkpoint-2"
    assert second.seen == [3, 4, 5, 6]  # continued from step 2, not from 0
    assert summary["global_step"] == 6


def test_model_resolution_is_local_unless_download_allowed(tmp_path):
    with pytest.raises(CyberslmError, match="--allow-download"):
        resolve_model({"name_or_path": "Qwen/Qwen3-4B-Instruct-2507"}, allow_download=False)
    assert resolve_model({"name_or_path": "Qwen/Qwen3-4B-Instruct-2507"}, allow_download=True)[0].startswith("Qwen/")
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(CyberslmError, match="safetensors"):
        resolve_model({"name_or_path": str(tmp_path)}, allow_download=False)
    source, kwargs = resolve_model({"name_or_path": "smollm2"}, allow_download=False)
    assert kwargs["gguf_file"].endswith(".gguf") and Path(source, kwargs["gguf_file"]).is_file()


def test_qlora_on_cpu_is_a_clear_error(tiny_qwen3_dir, chat_jsonl, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("has a GPU")
    recipe = load_recipe(tiny_recipe(tmp_path, tiny_qwen3_dir), ["model.quantization=4bit"])
    with pytest.raises(CyberslmError, match="GPU"):
        train_sft(recipe, tmp_path / "q", train_file=Path(chat_jsonl))
