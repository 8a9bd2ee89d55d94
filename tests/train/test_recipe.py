"""Recipes load, every shipped recipe is a valid SFTConfig, and `--set` overrides are typed and checked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cyberslm.errors import CyberslmError
from cyberslm.train.recipe import RECIPES_DIR, load_recipe
from cyberslm.train.sft import _sft_config

SHIPPED = sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def test_the_required_recipes_ship():
    assert {"cybersecqwen-4b", "cybersecqwen-4b-qlora", "smollm2-135m-cpu"} <= set(SHIPPED)
    assert {p.name for p in (RECIPES_DIR / "accelerate").glob("*.yaml")} == {
        "fsdp.yaml", "deepspeed-zero2.yaml", "deepspeed-zero3.yaml"}


@pytest.mark.parametrize("name", SHIPPED)
def test_every_recipe_builds_an_sft_config(name, tmp_path):
    recipe = load_recipe(name, ["training.bf16=false", "training.use_cpu=true"])  # CPU sandbox
    config = _sft_config(recipe["training"], tmp_path)
    assert config.max_length == recipe["training"]["max_length"]
    assert recipe["lora"]["r"] > 0 and recipe["data"]["mix"]


def test_cybersecqwen_recipe_matches_the_paper_setup():
    r = load_recipe("cybersecqwen-4b")
    assert r["model"]["name_or_path"] == "Qwen/Qwen3-4B-Instruct-2507"
    assert (r["lora"]["r"], r["lora"]["alpha"], r["lora"]["dropout"]) == (64, 64, 0.05)
    assert len(r["lora"]["target_modules"]) == 7
    assert r["model"]["attn_implementation"] == "flash_attention_2" and r["model"]["quantization"] is None
    t = r["training"]
    assert (t["per_device_train_batch_size"], t["max_length"], t["packing"], t["activation_checkpointing"]) == (
        4, 4096, True, False)
    assert (t["learning_rate"], t["lr_scheduler_type"], t["warmup_steps"], t["weight_decay"], t["seed"]) == (
        5e-5, "cosine", 0.05, 0.01, 42)
    assert load_recipe("cybersecqwen-4b-qlora")["model"]["quantization"] == "4bit"


def test_overrides_are_yaml_typed():
    r = load_recipe("smollm2-135m-cpu", ["lora.r=4", "training.learning_rate=1e-3", "lora.target_modules=[q_proj]",
                                         "data.mix.cvss=10", "model.gguf_file=null"])
    assert r["lora"]["r"] == 4 and r["training"]["learning_rate"] == 1e-3
    assert r["lora"]["target_modules"] == ["q_proj"] and r["data"]["mix"]["cvss"] == 10
    assert r["model"]["gguf_file"] is None


@pytest.mark.parametrize("bad,match", [
    ("lora.rank=4", "unknown key lora.rank"),
    ("optimizer.lr=1", "unknown recipe key"),
    ("lora.r", "KEY=VALUE"),
    ("data.mix.tweets=5", "unknown data.mix source"),
])
def test_bad_override_is_a_one_line_error(bad, match):
    with pytest.raises(CyberslmError, match=match) as err:
        load_recipe("smollm2-135m-cpu", [bad])
    assert "\n" not in str(err.value)


def test_bad_training_field_and_missing_recipe(tmp_path):
    recipe = load_recipe("smollm2-135m-cpu", ["training.learnin_rate=1"])
    with pytest.raises(CyberslmError, match="training.learnin_rate"):
        _sft_config(recipe["training"], tmp_path)
    with pytest.raises(CyberslmError, match="recipe not found"):
        load_recipe("no-such-recipe")


def test_cli_prints_one_line_error_for_a_bad_key():
    proc = subprocess.run([sys.executable, "-m", "cyberslm.cli", "train", "sft", "smollm2-135m-cpu",
                           "--set", "lora.rank=4"], capture_output=True, text=True, cwd=Path(__file__).parent)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "lora.rank" in proc.stderr
