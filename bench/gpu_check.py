"""GPU proof of the training and serving claims, on random weights of the real architecture (nothing downloaded).

    python bench/gpu_check.py --out results/   # needs a CUDA GPU; ~5 min on an H100
    python bench/gpu_check.py --out results/ --recipe-data sft.jsonl --tokenizer TOKENIZER_DIR

Each requested part runs in its own fresh Python process (this script re-invoked with --parts PART), so no
memory left by one part can show up in another's peak; each appends JSON lines to OUT/gpu_check.jsonl as it
finishes (a crash keeps what ran):
1. `memory`: `cyberslm plan` against the measured peak of bf16 LoRA r=64 steps (all 7 linears, dropout 0.05,
   AdamW foreach) of a randomly initialised Qwen3-4B-Instruct-2507 (bundled config.json) at batch 4 and
   several sequence lengths, with and without activation checkpointing, and of bf16 inference (prefill of a
   4096-token context plus 32 generated tokens). Attention runs through PyTorch SDPA restricted to its
   FlashAttention-2 kernel (`sdpa_kernel(FLASH_ATTENTION)`): a step that could not use it fails rather than
   fall back silently. Measured = torch.cuda.max_memory_allocated; the plan column leaves out its flat
   1 GiB CUDA-runtime allowance so both count the same thing, and models this plain `model(labels=...)`
   loss (chunked_loss=False: full fp32 logits).
   `census`: what autograd saves for backward in one such LoRA forward, by dtype and last dimension.
2. `recipe`: the real `cyberslm train sft` code path (cyberslm.train.sft.train_sft: TRL SFTTrainer + PEFT,
   padding-free packing, assistant-only labels, checkpoints, JSONL log) with recipes/cybersecqwen-4b.yaml on
   the random model saved as safetensors, given the tokenizer folder and SFT JSONL from `cyberslm data sft`.
   First the recipe as written at its max_length 4096 (the plan says it needs more than 80 GB), then at
   --recipe-max-length with a resume from its checkpoint. `qlora`: the same with
   recipes/cybersecqwen-4b-qlora.yaml (4-bit NF4), at its max_length 2048 and at 4096. Both emit the plan for
   the run (TRL's chunked loss, no runtime allowance) next to the peak allocated during the steps.
3. `backend`: `hf:FOLDER` (the backend eval, triage --model, ask and serve share) on the GPU: bf16 load,
   batched greedy generation of CTI-RCM prompts at batch 1 / 8 / 32, streaming, log-likelihood scoring.
Random weights change no tensor shape, so memory and speed are those of the real model; losses are not.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

GIB = 1024**3
CHILD = "GPU_CHECK_CHILD"  # set in the per-part child processes: run the one part in-process
WORK = "GPU_CHECK_WORK"  # the parent's scratch folder, shared by the children (the saved random model)


def emit(out: Path, row: dict) -> None:
    from cyberslm.io import JsonlAppender

    print(json.dumps(row), flush=True)
    with JsonlAppender(out / "gpu_check.jsonl") as log:
        log.write(row)


def random_model(config: dict, attn: str = "sdpa"):
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    cfg = {k: v for k, v in config.items() if not k.startswith("_")}
    cfg_cls = CONFIG_MAPPING[cfg.pop("model_type")]
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg_cls(**cfg), dtype=torch.bfloat16, attn_implementation=attn)
    model.config.use_cache = False
    return model


def lora_step_peak(base, seq_len: int, batch: int, checkpointing: bool, steps: int = 3) -> dict:
    """Peak allocated bytes and step time of LoRA r=64 AdamW steps on `base` (adapters added and removed)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from cyberslm.train.plan import LINEARS

    model = get_peft_model(base, LoraConfig(r=64, lora_alpha=64, lora_dropout=0.05, target_modules=list(LINEARS)))
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, foreach=True)
    ids = torch.randint(0, model.config.vocab_size, (batch, seq_len), device="cuda")
    times, row = [], {}
    try:
        gc.collect()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            for _ in range(steps):
                torch.cuda.synchronize()
                start = time.perf_counter()
                loss = model(input_ids=ids, labels=ids).loss
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                torch.cuda.synchronize()
                times.append(time.perf_counter() - start)
        row = {"ok": True, "peak_allocated": torch.cuda.max_memory_allocated(),
               "peak_reserved": torch.cuda.max_memory_reserved(), "step_s": round(min(times), 3),
               "tokens_per_s": round(batch * seq_len / min(times)), "loss": round(float(loss), 3)}
    except torch.OutOfMemoryError as exc:
        row = {"ok": False, "error": "CUDA out of memory", "detail": str(exc).splitlines()[0][:200],
               "peak_allocated": torch.cuda.max_memory_allocated()}
    except RuntimeError as exc:  # e.g. "No available kernel": the flash kernel refused these inputs
        row = {"ok": False, "error": str(exc).splitlines()[0][:300], "peak_allocated": torch.cuda.max_memory_allocated()}
    finally:
        optimizer.zero_grad(set_to_none=True)
        del optimizer, trainable, ids
        if checkpointing:
            model.gradient_checkpointing_disable()
        model.unload()  # back to the plain base model, adapters gone
        if hasattr(base, "peft_config"):
            del base.peft_config
        gc.collect()
        torch.cuda.empty_cache()
    return row


def inference_peak(base, context: int, new_tokens: int = 32) -> dict:
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    base.eval()
    base.config.use_cache = True
    ids = torch.randint(0, base.config.vocab_size, (1, context - new_tokens), device="cuda")
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    with torch.no_grad(), sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION]):
        # decoding steps have one query row: SDPA may take the memory-efficient kernel there
        out = base.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    torch.cuda.synchronize()
    row = {"ok": True, "peak_allocated": torch.cuda.max_memory_allocated(),
           "peak_reserved": torch.cuda.max_memory_reserved(), "seconds": round(time.perf_counter() - start, 2),
           "generated": int(out.shape[1] - ids.shape[1])}
    base.config.use_cache = False
    del out, ids
    return row


def part_memory(out: Path, seqs: list[int], ckpt_seqs: list[int]) -> None:
    import torch

    from cyberslm.train.plan import BUNDLED, Architecture, inference_estimate, training_estimate

    config = json.loads((BUNDLED / "Qwen3-4B-Instruct-2507.json").read_text())
    arch = Architecture.from_config(config)
    start = time.time()
    base = random_model(config)
    weights = torch.cuda.memory_allocated()
    emit(out, {"part": "memory", "what": "random Qwen3-4B-Instruct-2507 bf16 on GPU", "params": arch.parameters(),
               "allocated_after_load": weights, "plan_weights": arch.parameters() * 2,
               "seconds": round(time.time() - start, 1)})
    for ckpt, lengths in ((False, seqs), (True, ckpt_seqs)):
        for seq in lengths:
            est = training_estimate(arch, "lora", seq, 4, dtype="bf16", checkpointing=ckpt, lora_rank=64,
                                    lora_dropout=0.05, gpu=False, chunked_loss=False)  # a plain loss here
            row = lora_step_peak(base, seq, 4, ckpt)
            ratio = est.total / row["peak_allocated"] if row.get("ok") else None
            emit(out, {"part": "memory", "mode": "train lora" + (" +ckpt" if ckpt else ""), "batch": 4,
                       "seq_len": seq, "plan_bytes": round(est.total), "plan_gib": round(est.total / GIB, 2),
                       "plan_fits_gpu": est.total + GIB <= torch.cuda.get_device_properties(0).total_memory,
                       "measured_gib": round(row["peak_allocated"] / GIB, 2),
                       "plan_over_measured": round(ratio, 3) if ratio else None, "attention": "sdpa flash only",
                       **row})
    est = inference_estimate(arch, 4096, 1, "bf16", gpu=False)
    row = inference_peak(base, 4096)
    emit(out, {"part": "memory", "mode": "inference bf16", "context": 4096, "batch": 1,
               "plan_gib": round(est.total / GIB, 2), "measured_gib": round(row["peak_allocated"] / GIB, 2),
               "plan_over_measured": round(est.total / row["peak_allocated"], 3),
               "plan_with_runtime_gib": round((est.total + GIB) / GIB, 2), **row})
    del base
    gc.collect()
    torch.cuda.empty_cache()


class StepTimer:
    """A TrainerCallback recording seconds, tokens and peak GPU memory of each optimizer step."""

    def __new__(cls):
        import torch
        from transformers import TrainerCallback

        class _Timer(TrainerCallback):
            def __init__(self):
                self.steps = []

            def on_step_begin(self, args, state, control, **kw):
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                self.base = torch.cuda.memory_allocated()
                self.start = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                torch.cuda.synchronize()
                self.steps.append({"step": state.global_step, "s": time.perf_counter() - self.start,
                                   "peak": torch.cuda.max_memory_allocated(), "base": self.base})

        return _Timer()


def saved_random_model(work: Path, tokenizer: Path) -> Path:
    """The random Qwen3-4B saved as a safetensors folder with `tokenizer`'s files, as `train sft` loads it."""
    import torch

    from cyberslm.train.plan import BUNDLED

    folder = work / "qwen3-4b-random"
    if folder.exists():
        return folder
    base = random_model(json.loads((BUNDLED / "Qwen3-4B-Instruct-2507.json").read_text()))
    base.save_pretrained(folder)  # safetensors
    del base
    gc.collect()
    torch.cuda.empty_cache()
    for f in tokenizer.iterdir():
        shutil.copy(f, folder / f.name)
    return folder


def part_recipe(out: Path, work: Path, data: Path, tokenizer: Path, max_length: int, steps: int,
                which: str = "lora") -> None:
    """`train_sft` runs of recipes/cybersecqwen-4b.yaml (which='lora') or cybersecqwen-4b-qlora.yaml ('qlora')."""
    import torch

    from cyberslm.errors import CyberslmError
    from cyberslm.train.plan import BUNDLED, Architecture, training_estimate
    from cyberslm.train.recipe import load_recipe
    from cyberslm.train.sft import train_sft

    arch = Architecture.from_config(json.loads((BUNDLED / "Qwen3-4B-Instruct-2507.json").read_text()))

    start = time.time()
    folder = saved_random_model(work, tokenizer)
    emit(out, {"part": which, "what": "saved random model + tokenizer", "seconds": round(time.time() - start, 1),
               "allocated_now": torch.cuda.memory_allocated()})
    if which == "qlora":
        qlora_static(out, folder)
    if which == "lora":
        recipe_name, out_dir = "cybersecqwen-4b", work / "run"
        runs = [("as written (max_length 4096)", [], 2, False),
                (f"max_length {max_length}", [f"training.max_length={max_length}"], steps, False),
                (f"max_length {max_length}, resumed", [f"training.max_length={max_length}"], steps + 2, True)]
    else:  # the QLoRA recipe as written: batch 1 x 4 accumulation, max_length 2048, checkpointing
        recipe_name, out_dir = "cybersecqwen-4b-qlora", work / "run-qlora"
        runs = [("as written (max_length 2048)", [], steps, False),
                ("max_length 4096", ["training.max_length=4096"], steps, False)]
    for name, extra, max_steps, resume in runs:
        overrides = [f"model.name_or_path={folder}", "model.attn_implementation=sdpa",
                     f"training.max_steps={max_steps}", "training.logging_steps=1",
                     f"training.save_steps={steps}", "training.dataloader_num_workers=0", *extra]
        recipe = load_recipe(recipe_name, overrides)
        timer = StepTimer()
        start = time.time()
        target = out_dir if "max_length 4096" not in name else work / f"run-{which}-4096"
        try:
            summary = train_sft(recipe, target, resume=resume, train_file=data, callbacks=[timer])
            ok, err = True, None
        except torch.OutOfMemoryError as exc:
            summary, ok, err = {}, False, "CUDA out of memory: " + str(exc).splitlines()[0][:160]
        except CyberslmError as exc:
            summary, ok, err = {}, False, str(exc)
        steady = timer.steps[1:] or timer.steps
        log = [json.loads(line) for line in (target / "train_log.jsonl").read_text().splitlines()] \
            if (target / "train_log.jsonl").exists() else []
        losses = [round(r["loss"], 3) for r in log if "loss" in r]
        tr, lo = recipe["training"], recipe["lora"]
        tokens = tr["per_device_train_batch_size"] * tr["max_length"]
        est = training_estimate(arch, which, tr["max_length"], tr["per_device_train_batch_size"], dtype="bf16",
                                checkpointing=bool(tr.get("activation_checkpointing") or tr.get("gradient_checkpointing")),
                                lora_rank=lo["r"], lora_dropout=lo["dropout"], gpu=False)  # TRL: chunked loss
        peak = max((s["peak"] for s in timer.steps), default=0)
        emit(out, {"part": which, "recipe": recipe_name, "run": name, "ok": ok, "error": err, "overrides": overrides,
                   "global_step": summary.get("global_step"), "resumed_from": summary.get("resumed_from"),
                   "examples": summary.get("examples"), "losses": losses,
                   "peak_allocated_gib": round(peak / GIB, 2), "plan_gib": round(est.total / GIB, 2),
                   "plan_over_measured": round(est.total / peak, 3) if ok and peak else None,
                   "allocated_at_step_begin_gib": round(max((s["base"] for s in timer.steps), default=0) / GIB, 2),
                   "median_step_s": round(sorted(s["s"] for s in steady)[len(steady) // 2], 3) if steady else None,
                   "max_tokens_per_step": tokens, "seconds": round(time.time() - start, 1),
                   "files": sorted(p.name for p in target.iterdir()) if target.exists() else []})
        gc.collect()
        torch.cuda.empty_cache()
    if (out_dir / "loss.png").exists():
        shutil.copy(out_dir / "loss.png", out / f"gpu_{which}_loss.png")


def qlora_static(out: Path, folder: Path) -> None:
    """What the QLoRA recipe's model load (`cyberslm.train.sft._load_model`) leaves on the GPU, by parameter kind."""
    from collections import Counter

    import torch

    from cyberslm.train.recipe import load_recipe
    from cyberslm.train.sft import _load_model, resolve_model

    recipe = load_recipe("cybersecqwen-4b-qlora", [f"model.name_or_path={folder}"])
    source, kwargs = resolve_model(recipe["model"], False)
    before = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    model = _load_model(source, kwargs, recipe["model"])
    kinds: Counter = Counter()
    for p in model.parameters():
        kinds[f"{type(p).__name__} {str(p.dtype).replace('torch.', '')}"] += p.numel() * p.element_size()
    emit(out, {"part": "qlora", "what": "model after _load_model (4-bit + prepare_model_for_kbit_training)",
               "allocated_before": before, "allocated_gib": round((torch.cuda.memory_allocated() - before) / GIB, 2),
               "load_peak_gib": round(torch.cuda.max_memory_allocated() / GIB, 2),
               "linear4bit_modules": sum(type(m).__name__ == "Linear4bit" for m in model.modules()),
               "param_bytes_by_kind": {k: v for k, v in kinds.most_common()}})
    del model
    gc.collect()
    torch.cuda.empty_cache()


def part_backend(out: Path, work: Path, tokenizer: Path, n: int = 64, new_tokens: int = 64) -> None:
    """The one backend that eval, triage --model, ask and serve use (`hf:FOLDER`) on the GPU: batched greedy
    generation of CTI-RCM prompts, streaming and log-likelihood scoring, with speed and peak memory."""
    import torch

    from cyberslm.data.sft import RCM_PROMPT
    from cyberslm.models.backend import GenerationConfig, load_backend

    folder = saved_random_model(work, tokenizer)
    torch.cuda.reset_peak_memory_stats()
    start = time.time()
    backend = load_backend(f"hf:{folder}")
    emit(out, {"part": "backend", "what": "load hf backend", "device": backend.device,
               "dtype": str(next(backend.model.parameters()).dtype),
               "attn": backend.model.config._attn_implementation, "seconds": round(time.time() - start, 1)})
    chats = [[{"role": "user", "content": RCM_PROMPT.format(
        desc=f"SQL injection in module {i} of a web application allows remote attackers to run SQL commands via "
             "the id parameter.")}] for i in range(n)]
    config = GenerationConfig(max_new_tokens=new_tokens)
    backend.generate(chats[:2], GenerationConfig(max_new_tokens=8))  # warm-up: CUDA context, kernels, allocator
    for batch in (1, 8, 32):
        backend.batch_size = batch
        todo = chats[: max(batch * 2, 8)]
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        answers = backend.generate(todo, config)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        emit(out, {"part": "backend", "what": "generate", "batch_size": batch, "prompts": len(todo),
                   "max_new_tokens": new_tokens, "seconds": round(seconds, 2),
                   "prompts_per_s": round(len(todo) / seconds, 2), "answers": len(answers),
                   "new_tokens_per_s": round(len(todo) * new_tokens / seconds),  # random weights never stop early
                   "peak_allocated_gib": round(torch.cuda.max_memory_allocated() / GIB, 2)})
    start = time.perf_counter()
    pieces = list(backend.stream(chats[0], config))
    emit(out, {"part": "backend", "what": "stream", "pieces": len(pieces), "seconds": round(time.perf_counter() - start, 2)})
    start = time.perf_counter()
    scores = backend.loglikelihood([(chats[0], f" {letter}") for letter in "ABCD"])
    emit(out, {"part": "backend", "what": "loglikelihood", "requests": len(scores),
               "finite": all(map(math.isfinite, scores)), "seconds": round(time.perf_counter() - start, 2)})
    backend.close()


def part_census(out: Path, seq: int = 512, batch: int = 4) -> None:
    """What autograd saves for backward in one LoRA forward (no checkpointing), grouped by dtype and last dim,
    in bytes per token per layer: the terms behind `layer_activation_bytes`."""
    from collections import Counter

    import torch
    from peft import LoraConfig, get_peft_model
    from torch.autograd.graph import saved_tensors_hooks
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from cyberslm.train.plan import BUNDLED, LINEARS, Architecture, layer_activation_bytes

    config = json.loads((BUNDLED / "Qwen3-4B-Instruct-2507.json").read_text())
    arch = Architecture.from_config(config)
    model = get_peft_model(random_model(config), LoraConfig(r=64, lora_alpha=64, lora_dropout=0.05,
                                                            target_modules=list(LINEARS)))
    model.train()
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    seen: dict[int, tuple] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in params and ptr not in seen:
            seen[ptr] = (str(t.dtype).replace("torch.", ""), t.shape[-1] if t.dim() else 0, t.untyped_storage().nbytes())
        return t

    ids = torch.randint(0, arch.vocab_size, (batch, seq), device="cuda")
    with saved_tensors_hooks(pack, lambda t: t), sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        loss = model(input_ids=ids, labels=ids).loss
    groups: Counter = Counter()
    for dtype, last, nbytes in seen.values():
        groups[f"{dtype} [..., {last}]"] += nbytes
    tokens, layers = batch * seq, arch.num_layers
    total = sum(groups.values())
    emit(out, {"part": "census", "seq_len": seq, "batch": batch, "saved_bytes_total": total,
               "saved_bytes_per_token": round(total / tokens),
               "plan_layer_bytes_per_token": layer_activation_bytes(arch, "lora", "bf16", 64, 0.05, LINEARS),
               "groups_bytes_per_token_per_layer": {k: round(v / tokens / layers, 1) for k, v in groups.most_common(30)}})
    del loss, model
    gc.collect()
    torch.cuda.empty_cache()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seqs", default="512,1024,1536,1920,2048", help="batch-4 sequence lengths, no checkpointing")
    parser.add_argument("--ckpt-seqs", default="2048,4096", help="... with activation checkpointing")
    parser.add_argument("--recipe-data", type=Path, help="SFT JSONL from `cyberslm data sft` (part 2)")
    parser.add_argument("--tokenizer", type=Path, help="tokenizer folder with a chat template (part 2)")
    parser.add_argument("--recipe-max-length", type=int, default=1024)
    parser.add_argument("--recipe-steps", type=int, default=8)
    parser.add_argument("--qlora-steps", type=int, default=3)
    parser.add_argument("--parts", default="memory,recipe", help="any of memory,census,recipe,qlora,backend")
    args = parser.parse_args()

    order = ("census", "memory", "recipe", "qlora", "backend")
    parts = [p for p in args.parts.split(",") if p]
    unknown = sorted(set(parts) - set(order))
    if unknown:
        raise SystemExit(f"--parts: unknown {', '.join(unknown)} (any of {','.join(order)})")
    if os.environ.get(CHILD):  # one part, in this fresh process
        run_part(args, parts[0], Path(os.environ[WORK]), env_row=os.environ[CHILD] == "first")
        return
    for name in parts:
        if name in ("recipe", "qlora", "backend") and not args.tokenizer:
            raise SystemExit(f"part {name} needs --tokenizer")
        if name in ("recipe", "qlora") and not args.recipe_data:
            raise SystemExit(f"part {name} needs --recipe-data")
    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        for n, name in enumerate(p for p in order if p in parts):
            # the same command line with --parts NAME last (argparse keeps the last), in a new process
            env = dict(os.environ, **{CHILD: "first" if n == 0 else "next", WORK: str(work)})
            proc = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--parts", name], env=env)
            if proc.returncode != 0:  # killed, or failed before it could write its own error row
                emit(args.out, {"part": name, "ok": False, "error": f"part process exited with {proc.returncode}"})
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_part(args: argparse.Namespace, name: str, work: Path, env_row: bool) -> None:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("bench/gpu_check.py needs a CUDA GPU")
    args.out.mkdir(parents=True, exist_ok=True)
    if env_row:
        props = torch.cuda.get_device_properties(0)
        emit(args.out, {"part": "env", "gpu": props.name, "gpu_gib": round(props.total_memory / GIB, 1),
                        "torch": torch.__version__, "cuda": torch.version.cuda,
                        "bf16": torch.cuda.is_bf16_supported(), "flash_sdp": torch.backends.cuda.flash_sdp_enabled()})
    jobs = {
        "census": lambda: part_census(args.out),
        "memory": lambda: part_memory(args.out, [int(s) for s in args.seqs.split(",") if s],
                                      [int(s) for s in args.ckpt_seqs.split(",") if s]),
        "recipe": lambda: part_recipe(args.out, work, args.recipe_data, args.tokenizer, args.recipe_max_length,
                                      args.recipe_steps, "lora"),
        "qlora": lambda: part_recipe(args.out, work, args.recipe_data, args.tokenizer, args.recipe_max_length,
                                     args.qlora_steps, "qlora"),
        "backend": lambda: part_backend(args.out, work, args.tokenizer),
    }
    try:
        jobs[name]()
    except Exception:  # reported as a row; the parent goes on with the next part
        emit(args.out, {"part": name, "ok": False, "error": traceback.format_exc()[-1500:]})


if __name__ == "__main__":
    main()
