"""`cyberslm plan`: will this model run, or train, on this GPU? Memory from config.json alone.

Parameters are counted exactly from the architecture of a llama / mistral / qwen2 / qwen3 / gemma /
gemma2 / gemma3 decoder (h = hidden_size, i = intermediate_size, L = layers, nq = heads x head_dim,
nkv = kv_heads x head_dim, V = vocab):
  embeddings V*h, plus V*h again for lm_head unless tie_word_embeddings;
  per layer q h*nq, k and v h*nkv each (GQA), o nq*h, gate/up/down 3*h*i (SwiGLU / GeGLU),
  q/k/v biases (qwen2, attention_bias), o and MLP biases (attention_bias, mlp_bias),
  RMSNorm weights: 2*h (4*h for gemma2/3, which add pre/post feed-forward norms),
  2*head_dim for the per-head q/k norms of qwen3 and gemma3; a final norm h.

Memory, in bytes (b = batch, s = context or training sequence length, T = b*s tokens, c = compute
bytes: 2 for bf16/fp16, 4 for fp32; r = LoRA rank):
  weights      bf16/fp16 2, fp32 4 bytes/param. int8 (LLM.int8) 1 byte per decoder linear weight + one
               fp32 scale per output row. 4-bit NF4 0.5 byte + quant constants: one 8-bit absmax per
               64 weights and, with double quantization (the QLoRA default), one fp32 per 256 absmax,
               i.e. 0.5 + 1/64 + 4/16384 bytes. Embeddings, lm_head and norms are never quantized by
               bitsandbytes, so they stay bf16 for inference.
  KV cache     2 (K and V) * L * kv_heads * head_dim * s * b * c: what generation keeps per token.
  inference    prefill of the whole context in one pass holds one layer's transient tensors:
  workspace    b*s*(2h + 2nq + 2nkv + 3i)*c (residual + normed input, q/k/v, attention output, MLP
               gate/up/product; FlashAttention/SDPA needs no s^2 score matrix), plus the fp32 logits of
               the last token only (generate keeps just those), plus for int8/4-bit the largest linear
               dequantized to bf16.
  GPU runtime  a flat 1 GiB for the CUDA context, cuBLAS workspace and allocator fragmentation; it is
               added to every GPU total and left out of the CPU and allocated-memory checks. (On the H100
               the caching allocator reserved 0.9-7.3 GiB more than was allocated: not covered.)
  full FT      16 bytes/param: bf16 weights 2 + bf16 grads 2 + fp32 master weights 4 + Adam m, v 8 (the
               ZeRO-paper mixed-precision accounting; plain fp32 training is also 4 + 4 + 8 = 16).
  LoRA         frozen base weights at c bytes (all params) + adapter params r*(in + out) per targeted
               linear per layer at 16 bytes each: PEFT keeps adapters in fp32 (weight 4, grad 4, Adam 8).
  QLoRA        base decoder linears in 4-bit NF4 (above); peft's prepare_model_for_kbit_training (which
               `cyberslm train sft` calls) upcasts every other parameter (embeddings, lm_head, norms) to
               fp32: 4 bytes each. TRL's SFTTrainer casts the adapters of a quantized model to bf16, so
               they cost 8 bytes/param (weight 2, grad 2, Adam m, v 4). One linear at a time is
               dequantized to bf16.
  optimizer    torch AdamW with foreach (the GPU default) allocates sqrt(v) for every trainable param at
  step         once: 4 bytes/trainable param (2 for bf16 QLoRA adapters), transient, after activations
               are freed.
  activations  what autograd saves for backward, per token and decoder layer:
               fp32 (c = 4; counted with saved_tensors_hooks on CPU, transformers 5 / torch 2.13), in
               4-byte elements:
                 6h (two RMSNorms: fp32 input + normalized output + their output as linear input)
                 + 2nq + 2nkv (q, k, v saved by SDPA; attention output saved by o_proj)
                 + 4i (gate, act(gate), up, act*up saved by act, mul and down_proj)
                 + heads (SDPA log-sum-exp) + 3h per extra gemma2/3 norm + 2nq + 2nkv for q/k norms;
                 LoRA adds per adapted linear its dropout-ed input copy (when dropout > 0) and the r-wide
                 lora_A output.
               bf16/fp16 (c = 2; measured on an H100 by `python bench/gpu_check.py --parts census`: bf16
               Qwen3-4B, LoRA r=64 on all 7 linears, no checkpointing; 254,806 bytes/token/layer against
               255,016 here), in bytes:
                 4h + 4 per RMSNorm (its fp32 upcast input and rsqrt; a frozen weight saves nothing more)
                 + (2nq + 2nkv)*c + 4*heads (q, k, v and the output saved by SDPA, fp32 log-sum-exp)
                 + 4(nq + nkv) + 4(heads + kv_heads) for qwen3/gemma3 q/k norms (fp32 input and rsqrt)
                 + 3i*c (gate, act(gate), up; a frozen down_proj saves no input)
                 + per adapted linear 4*in + in + 4r: PEFT casts the adapter input to the fp32 adapter
                   dtype, lora_A saves the fp32 dropout output, dropout its 1-byte bool mask (GPU, when
                   dropout > 0), lora_B the fp32 r-wide lora_A output.
               Full fine-tuning in bf16 (not measured) adds what trainable weights need: each norm's
               normalized output and the linears' inputs (2h*c per norm, (nq + nkv)*c for q/k norms,
               nq*c for o_proj, i*c for down_proj).
               QLoRA (TRL path, measured only end to end): the fp32 embeddings make the residual stream
               fp32 and bitsandbytes returns each 4-bit linear's output in its input dtype, so the MLP
               terms are 4 bytes (3i*4, and the layer inputs that checkpointing keeps are h*4); the bf16
               adapters save 2*in + in + 2r.
               Not modelled, so the plan is high there: TRL's Trainer runs bf16 LoRA under autocast, where
               lora_A saves a bf16 copy of its input (2*in, and 2r for lora_B): a census under autocast
               found 202,448 bytes/token/layer for Qwen3-4B instead of 254,806.
  loss         `cyberslm train sft` (TRL 1.16 SFTTrainer) computes the loss with a fused LM head
               (trl.trainer.utils.add_fused_lm_head, trl/kernels/chunked_logprob.py) that never builds
               the T x V logits: its backward holds a [min(T, 4096), 32768] tile in c bytes (a 4096-token
               by 32768-vocab chunk), the saved final hidden states, their fp32 gradient and one c-byte
               copy (of the gradient, or for QLoRA of the fp32 hidden states): T*h*(c_res + 4 + c) with
               c_res the residual stream's bytes, plus for QLoRA a bf16 copy of a 32768-row slice of the
               fp32 lm_head.
               A plain transformers loss (`model(input_ids, labels=...)`, `--full-logits`) upcasts the
               T x V logits to fp32; at the start of backward three fp32 T x V buffers coexist (saved
               log-softmax, its incoming gradient, the gradient it produces): 12 bytes per element (the
               bf16 logits are freed when forward returns). For a 152k vocabulary at T = 4096 that alone
               is 7.0 GiB.
  peak         no checkpointing: all L layers' saved activations + the final norm + the loss term, at
               the start of backward. Gradient checkpointing (each decoder layer re-run in backward):
               only the layer inputs L*h are kept, plus the larger of the loss term and one recomputed
               layer with its gradient buffers (2h + 2i). Training peak = static (weights, trainable
               state) + max(activation peak, optimizer step transient).
Checked against memory measured on CPU for tiny random models and SmolLM2-135M (bench/plan_check.py,
fp32, plain loss): estimate / measured peak was 0.96-1.16 over 20 runs (full FT is the high side: all
gradients are counted as resident for the whole backward). On an H100 against torch.cuda.max_memory_allocated
(bench/gpu_check.py, random-weight Qwen3-4B, docs/bench/plan.md): bf16 LoRA with a plain loss 1.006-1.015
(batch 4, seq 512-4096, with and without checkpointing), bf16 inference 0.99, the QLoRA recipe through
`cyberslm train sft` 0.98, the LoRA recipe through it 1.12-1.13 (autocast, above).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer

from cyberslm.errors import CyberslmError

BUNDLED = Path(__file__).parent / "data"
GIB = 1024**3
GPU_RUNTIME_OVERHEAD = 1 * GIB
DTYPES = {"bf16": 2.0, "fp16": 2.0, "fp32": 4.0, "int8": 1.0, "4bit": 0.5}
DTYPE_ALIASES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32", "nf4": "4bit", "int4": "4bit"}
NF4_BYTES_PER_PARAM = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit codes + 8-bit absmax/64 + fp32 per 256 absmax
# TRL 1.16 fused LM head (trl/kernels/chunked_logprob.py): TOKEN_CHUNK_SIZE tokens x _CHUNKED_LOGPROB_CHUNK_SIZE vocab
TRL_TOKEN_CHUNK = 4096
TRL_VOCAB_CHUNK = 32768
LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SUPPORTED = ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3", "gemma3_text")
REQUIRED = ("model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size")


@dataclass(frozen=True)
class Architecture:
    """The shape of a decoder-only transformer, read from its config.json."""

    model_type: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool
    max_position_embeddings: int | None
    qkv_bias: bool
    o_bias: bool
    mlp_bias: bool
    norms_per_layer: int
    qk_norm: bool

    @classmethod
    def from_config(cls, cfg: dict, source: str = "config") -> Architecture:
        """Build from a config.json dict (a multimodal config's `text_config` is used when present)."""
        cfg = cfg.get("text_config", cfg)
        missing = [k for k in REQUIRED if k not in cfg]
        if missing:
            raise CyberslmError(f"{source}: missing field {missing[0]}")
        model_type = cfg["model_type"]
        if model_type not in SUPPORTED:
            raise CyberslmError(f"{source}: model_type {model_type!r} is not supported ({', '.join(SUPPORTED)})")
        try:
            heads = int(cfg["num_attention_heads"])
            h = int(cfg["hidden_size"])
            attention_bias = bool(cfg.get("attention_bias", False))
            gemma = model_type.startswith("gemma")
            return cls(
                model_type=model_type,
                hidden_size=h,
                intermediate_size=int(cfg["intermediate_size"]),
                num_layers=int(cfg["num_hidden_layers"]),
                num_heads=heads,
                num_kv_heads=int(cfg.get("num_key_value_heads") or heads),
                head_dim=int(cfg.get("head_dim") or h // heads),
                vocab_size=int(cfg["vocab_size"]),
                # gemma ties by default; the others default to untied in transformers
                tie_word_embeddings=bool(cfg.get("tie_word_embeddings", gemma)),
                max_position_embeddings=cfg.get("max_position_embeddings"),
                qkv_bias=model_type == "qwen2" or attention_bias,  # Qwen2Attention hard-codes bias=True
                o_bias=attention_bias and model_type != "qwen2",
                mlp_bias=bool(cfg.get("mlp_bias", False)),
                norms_per_layer=4 if model_type in ("gemma2", "gemma3", "gemma3_text") else 2,
                qk_norm=model_type in ("qwen3", "gemma3", "gemma3_text"),
            )
        except (TypeError, ValueError) as exc:
            raise CyberslmError(f"{source}: bad shape field: {exc}") from exc

    @property
    def q_dim(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.num_kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear in one decoder layer."""
        h, i = self.hidden_size, self.intermediate_size
        return {"q_proj": (h, self.q_dim), "k_proj": (h, self.kv_dim), "v_proj": (h, self.kv_dim),
                "o_proj": (self.q_dim, h), "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def layer_linear_params(self) -> int:
        """Weights of the decoder-layer linears (what int8/4-bit quantization touches), one layer."""
        return sum(a * b for a, b in self.linear_shapes().values())

    def layer_other_params(self) -> int:
        """Biases and norm weights of one layer (never quantized)."""
        h, i = self.hidden_size, self.intermediate_size
        n = self.norms_per_layer * h + (2 * self.head_dim if self.qk_norm else 0)
        n += (self.q_dim + 2 * self.kv_dim) if self.qkv_bias else 0
        n += h if self.o_bias else 0
        n += (2 * i + h) if self.mlp_bias else 0
        return n

    def embedding_params(self) -> int:
        """Input embeddings plus lm_head when it is not tied to them."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    def parameters(self) -> int:
        """Exact parameter count (tied weights counted once, like model.parameters())."""
        per_layer = self.layer_linear_params() + self.layer_other_params()
        return self.embedding_params() + self.num_layers * per_layer + self.hidden_size

    def lora_parameters(self, rank: int, targets: tuple[str, ...] = LINEARS) -> int:
        """LoRA A (r x in) and B (out x r) for each targeted linear in every layer."""
        shapes = self.linear_shapes()
        return self.num_layers * sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets)


def load_architecture(model: str) -> tuple[Architecture, str]:
    """MODEL is a config.json, a model folder holding one, or a bundled name; returns (arch, source)."""
    path = Path(model).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        bundled = {p.stem.lower(): p for p in BUNDLED.glob("*.json")}
        path = bundled.get(model.split("/")[-1].lower())
        if path is None:
            names = ", ".join(sorted(p.stem for p in bundled.values()))
            raise CyberslmError(f"{model}: no such config.json or model folder, and not a bundled name ({names})")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CyberslmError(f"{path}: unreadable config.json: {exc}") from exc
    if not isinstance(cfg, dict):
        raise CyberslmError(f"{path}: config.json is not a JSON object")
    return Architecture.from_config(cfg, str(path)), str(path)


def parse_size(text: str) -> int:
    """'12GiB', '12GB', '24g' (GiB), '16000MiB', '80' (GiB) -> bytes."""
    t = text.strip().lower().replace(" ", "")
    units = (("gib", GIB), ("gb", 10**9), ("g", GIB), ("mib", 1024**2), ("mb", 10**6), ("tib", 1024**4))
    mult = next((m for suffix, m in units if t.endswith(suffix)), GIB)
    number = t.rstrip("abgimt")
    try:
        value = float(number)
    except ValueError:
        raise CyberslmError(f"--gpu-mem {text!r}: expected a size such as 12GiB or 24GB") from None
    if value <= 0 or math.isinf(value):
        raise CyberslmError(f"--gpu-mem {text!r}: must be a positive size")
    return int(value * mult)


def normalize_dtype(dtype: str) -> str:
    d = DTYPE_ALIASES.get(dtype.lower(), dtype.lower())
    if d not in DTYPES:
        raise CyberslmError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    return d


@dataclass
class Estimate:
    """One way of running the model, with its memory terms in bytes."""

    mode: str
    terms: dict[str, float]
    total: float = 0.0
    fits: bool | None = None
    max_seq_len: int | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def weight_bytes(arch: Architecture, dtype: str, other_bytes: float = 2.0) -> float:
    """Resident weights: int8/4-bit quantize only the decoder linears; the rest stays at `other_bytes` (bf16 for
    inference; 4 after peft's prepare_model_for_kbit_training, which QLoRA training calls)."""
    if dtype in ("bf16", "fp16", "fp32"):
        return arch.parameters() * DTYPES[dtype]
    linear = arch.num_layers * arch.layer_linear_params()
    rest = (arch.parameters() - linear) * other_bytes
    if dtype == "int8":
        rows = arch.num_layers * sum(out for _, out in arch.linear_shapes().values())
        return linear + 4 * rows + rest
    return linear * NF4_BYTES_PER_PARAM + rest


def _compute_bytes(dtype: str) -> float:
    return 4.0 if dtype == "fp32" else 2.0


def kv_cache_bytes(arch: Architecture, context: int, batch: int, dtype: str) -> float:
    """2 (K, V) x layers x kv_heads x head_dim x context x batch x bytes."""
    return 2 * arch.num_layers * arch.kv_dim * context * batch * _compute_bytes(dtype)


def inference_estimate(arch: Architecture, context: int, batch: int, dtype: str, gpu: bool = True) -> Estimate:
    """Serving with generate(): weights + KV cache for the full context + prefill workspace."""
    c = _compute_bytes(dtype)
    h, i = arch.hidden_size, arch.intermediate_size
    workspace = batch * context * (2 * h + 2 * arch.q_dim + 2 * arch.kv_dim + 3 * i) * c
    workspace += batch * arch.vocab_size * 4
    if dtype in ("int8", "4bit"):
        workspace += max(a * b for a, b in arch.linear_shapes().values()) * 2
    terms = {"weights": weight_bytes(arch, dtype), "kv_cache": kv_cache_bytes(arch, context, batch, dtype),
             "workspace": workspace}
    if gpu:
        terms["gpu_runtime"] = GPU_RUNTIME_OVERHEAD
    return Estimate(f"inference {dtype}", terms, sum(terms.values()))


def layer_activation_elements(arch: Architecture, method: str, lora_rank: int, lora_dropout: float,
                              targets: tuple[str, ...]) -> float:
    """Elements autograd saves per token in one decoder layer in fp32 training (see the module docstring)."""
    h, i, nq, nkv = arch.hidden_size, arch.intermediate_size, arch.q_dim, arch.kv_dim
    n = 6 * h + 2 * nq + 2 * nkv + 4 * i + arch.num_heads
    n += 3 * h * (arch.norms_per_layer - 2)
    if arch.qk_norm:
        n += 2 * nq + 2 * nkv
    if method in ("lora", "qlora"):
        shapes = arch.linear_shapes()
        n += sum((shapes[t][0] if lora_dropout > 0 else 0) + lora_rank for t in targets)
    return n


def layer_activation_bytes(arch: Architecture, method: str, dtype: str = "bf16", lora_rank: int = 64,
                           lora_dropout: float = 0.05, targets: tuple[str, ...] = LINEARS) -> float:
    """Bytes autograd saves per token in one decoder layer (see the module docstring).

    fp32: the CPU-checked element count x 4. bf16/fp16: the per-dtype count measured on an H100 with
    `python bench/gpu_check.py --parts census` (fp32 norm inputs and LoRA inputs, bf16 attention and MLP)."""
    if _compute_bytes(dtype) == 4:
        return 4.0 * layer_activation_elements(arch, method, lora_rank, lora_dropout, targets)
    c = _compute_bytes(dtype)
    h, i, nq, nkv = arch.hidden_size, arch.intermediate_size, arch.q_dim, arch.kv_dim
    full = method == "full"
    mlp = 4.0 if method == "qlora" else c  # QLoRA: fp32 residual stream, bnb returns fp32
    n = arch.norms_per_layer * (4 * h + 4 + (2 * h * c if full else 0))
    n += (2 * nq + 2 * nkv) * c + 4 * arch.num_heads + (nq * c if full else 0)
    if arch.qk_norm:
        n += 4 * (nq + nkv) + 4 * (arch.num_heads + arch.num_kv_heads) + ((nq + nkv) * c if full else 0)
    n += 3 * i * mlp + (i * c if full else 0)
    if method in ("lora", "qlora"):
        adapter = 2.0 if method == "qlora" else 4.0  # TRL casts a quantized model's adapters to bf16
        shapes = arch.linear_shapes()
        n += sum(shapes[t][0] * (adapter + (1 if lora_dropout > 0 else 0)) + lora_rank * adapter for t in targets)
    return n


def loss_bytes(arch: Architecture, tokens: int, dtype: str = "bf16", chunked_loss: bool = True,
               method: str = "lora") -> float:
    """What the loss holds at the start of backward: TRL's fused, chunked LM head or the full fp32 logits."""
    if not chunked_loss:
        return tokens * arch.vocab_size * 12.0
    c = _compute_bytes(dtype)
    residual = 4.0 if method == "qlora" else c
    tile = min(tokens, TRL_TOKEN_CHUNK) * TRL_VOCAB_CHUNK * c
    hidden = tokens * arch.hidden_size * (residual + 4 + c)
    head_slice = TRL_VOCAB_CHUNK * arch.hidden_size * c if residual != c else 0  # fp32 lm_head cast per chunk
    return tile + hidden + head_slice


def training_estimate(arch: Architecture, method: str, seq_len: int, batch: int, dtype: str = "bf16",
                      checkpointing: bool = False, lora_rank: int = 64, lora_dropout: float = 0.05,
                      targets: tuple[str, ...] = LINEARS, gpu: bool = True, chunked_loss: bool = True) -> Estimate:
    """Peak memory of one optimizer step for method 'full', 'lora' or 'qlora'.

    chunked_loss: True for `cyberslm train sft` (TRL's fused LM head); False for a plain
    `model(input_ids, labels=...)` loss that materializes the fp32 logits (what the CPU and GPU checks run)."""
    c = _compute_bytes(dtype)
    tokens = seq_len * batch
    h, i = arch.hidden_size, arch.intermediate_size
    terms: dict[str, float] = {}
    step_bytes = 4.0
    if method == "full":
        trainable = arch.parameters()
        terms["weights+grads+adam"] = trainable * 16.0
    elif method == "lora":
        trainable = arch.lora_parameters(lora_rank, targets)
        terms["base_weights"] = weight_bytes(arch, "fp32" if c == 4 else "bf16")
        terms["lora+grads+adam"] = trainable * 16.0
    elif method == "qlora":
        trainable = arch.lora_parameters(lora_rank, targets)
        terms["base_weights"] = weight_bytes(arch, "4bit", other_bytes=4.0)
        terms["lora+grads+adam"] = trainable * 8.0  # bf16 adapters (TRL), bf16 grads and Adam state
        step_bytes = 2.0
    else:
        raise CyberslmError(f"training method {method!r}: expected full, lora or qlora")
    if c == 4:  # the CPU-checked fp32 accounting
        layer = layer_activation_elements(arch, method, lora_rank, lora_dropout, targets) * tokens * c
        residual, final_norm, grad_buffers = c, 3 * h * c, c
    else:
        layer = layer_activation_bytes(arch, method, dtype, lora_rank, lora_dropout, targets) * tokens
        residual = 4.0 if method == "qlora" else c
        final_norm = 4 * h + 4 + (2 * h * c if method == "full" else 0)
        grad_buffers = residual
    loss = loss_bytes(arch, tokens, dtype, chunked_loss, method)
    if checkpointing:
        recompute = layer + tokens * (2 * h + 2 * i) * grad_buffers
        activations = arch.num_layers * tokens * h * residual + max(loss, recompute)
        if c < 4:
            activations += final_norm * tokens
    else:
        activations = arch.num_layers * layer + final_norm * tokens + loss
    if method == "qlora":
        activations += max(a * b for a, b in arch.linear_shapes().values()) * 2  # one dequantized weight
    terms["activations"] = activations
    terms["optimizer_step"] = trainable * step_bytes  # shown; only the larger of it and activations counts
    if gpu:
        terms["gpu_runtime"] = GPU_RUNTIME_OVERHEAD
    static = sum(v for k, v in terms.items() if k not in ("activations", "optimizer_step"))
    name = f"train {method}" + (" +ckpt" if checkpointing else "")
    return Estimate(name, terms, static + max(activations, terms["optimizer_step"]))


def max_seq_len(arch: Architecture, budget: float, limit: int, **kwargs) -> int:
    """Longest training sequence (multiple of 128, up to `limit`) whose estimate fits `budget`; 0 if none."""
    lo, hi = 0, max(limit // 128, 1)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if training_estimate(arch, seq_len=mid * 128, **kwargs).total <= budget:
            lo = mid
        else:
            hi = mid - 1
    return lo * 128


def plan(arch: Architecture, gpu_mem: int, context: int = 4096, batch: int = 1, dtype: str = "bf16",
         seq_len: int = 2048, lora_rank: int = 64, lora_dropout: float = 0.05, chunked_loss: bool = True) -> dict:
    """Every estimate for one model and GPU, as a JSON-ready dict (chunked_loss: see training_estimate)."""
    dtype = normalize_dtype(dtype)
    if min(context, batch, seq_len, lora_rank) <= 0:
        raise CyberslmError("--context, --seq-len, --batch and --lora-r must be positive")
    train_dtype = "fp32" if dtype == "fp32" else "bf16"
    rows = [inference_estimate(arch, context, batch, dtype)]
    limit = arch.max_position_embeddings or 131072
    for method in ("lora", "qlora", "full"):
        for ckpt in (False, True):
            kw = dict(method=method, batch=batch, dtype=train_dtype, checkpointing=ckpt,
                      lora_rank=lora_rank, lora_dropout=lora_dropout, chunked_loss=chunked_loss)
            est = training_estimate(arch, seq_len=seq_len, **kw)
            est.max_seq_len = max_seq_len(arch, gpu_mem, min(limit, 131072), **kw)
            rows.append(est)
    for est in rows:
        est.fits = est.total <= gpu_mem
    return {
        "parameters": arch.parameters(),
        "lora_parameters": arch.lora_parameters(lora_rank),
        "architecture": asdict(arch),
        "gpu_mem_bytes": gpu_mem,
        "context": context, "seq_len": seq_len, "batch": batch, "dtype": dtype, "train_dtype": train_dtype,
        "lora_rank": lora_rank, "lora_targets": list(LINEARS), "chunked_loss": chunked_loss,
        "estimates": [e.to_dict() for e in rows],
        "note": "estimates from config.json; GPU totals include a flat 1 GiB CUDA runtime allowance",
    }


def _gib(x: float) -> str:
    return f"{x / GIB:.2f}"


def plan_command(
    model: Annotated[str, typer.Argument(help="config.json, model folder, or bundled name (e.g. Qwen3-4B-Instruct-2507)")],
    gpu_mem: Annotated[str, typer.Option("--gpu-mem", help="GPU memory: 12GiB, 24GB, 80 (GiB)")] = "24GiB",
    context: Annotated[int, typer.Option(help="inference context length (prompt + output tokens)")] = 4096,
    batch: Annotated[int, typer.Option(help="sequences per forward pass / training step")] = 1,
    dtype: Annotated[str, typer.Option(help="inference weights: bf16, fp16, fp32, int8, 4bit")] = "bf16",
    seq_len: Annotated[int, typer.Option("--seq-len", help="training sequence length (tokens per example)")] = 2048,
    lora_r: Annotated[int, typer.Option("--lora-r", help="LoRA rank (all 7 linears targeted)")] = 64,
    full_logits: Annotated[bool, typer.Option("--full-logits", help=(
        "model a plain transformers loss (model(labels=...)) that builds the fp32 logits, instead of the "
        "chunked LM head of TRL's SFTTrainer that `cyberslm train sft` uses"))] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """Estimate inference and training memory for MODEL from its config.json and say what fits the GPU."""
    arch, source = load_architecture(model)
    result = plan(arch, parse_size(gpu_mem), context, batch, dtype, seq_len, lora_r, chunked_loss=not full_logits)
    result["source"] = source
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{Path(source).stem}: {result['parameters'] / 1e9:.3f}B parameters on a "
                  f"{_gib(result['gpu_mem_bytes'])} GiB GPU", caption=(
                      f"inference: context {context}, batch {batch}; training: seq {seq_len}, batch {batch}, "
                      f"{result['train_dtype']}, LoRA r={lora_r} on all 7 linears, AdamW, "
                      f"{'full fp32 logits' if full_logits else 'chunked loss (TRL)'}"))
    for col in ("mode", "weights", "state", "activ.", "total GiB", "fits", "max seq"):
        table.add_column(col, justify="left" if col in ("mode", "fits") else "right", no_wrap=True)
    for e in result["estimates"]:
        t = e["terms"]
        weights = t.get("weights", t.get("base_weights", t.get("weights+grads+adam", 0)))
        state = t.get("kv_cache", t.get("lora+grads+adam"))
        act = t.get("workspace", t.get("activations", 0))
        table.add_row(e["mode"], _gib(weights), "-" if state is None else _gib(state), _gib(act),
                      _gib(e["total"]), "[green]yes[/]" if e["fits"] else "[red]no[/]",
                      "" if e["max_seq_len"] is None else str(e["max_seq_len"]))
    console = Console()
    console.print(table)
    console.print("state: KV cache (inference) or LoRA weights+grads+Adam; full FT 'weights' includes grads and "
                  "Adam. Totals add 1 GiB CUDA runtime. max seq: longest training sequence that fits. "
                  "Estimates from config.json (formulas: cyberslm/train/plan.py; checked against an H100 in "
                  "docs/bench/plan.md).")


# --- measuring the estimate on CPU (used by tests/train/test_plan.py and bench/plan_check.py) ---------------


def measure_cpu_peaks(runs: list[dict], timeout: float = 900) -> list[dict]:
    """Run two fp32 AdamW training steps on CPU for each run, in one fresh process; return measured peaks.

    A run is a dict: config (config.json dict, random weights, nothing downloaded) or gguf (a GGUF file
    path), method ('full' or 'lora'), seq_len, batch, and optionally checkpointing, lora_rank,
    lora_dropout. peak_bytes = exact parameter bytes + (peak RSS during the steps - RSS just before
    them): the kernel's high-water mark (VmHWM) is reset through /proc/self/clear_refs before each run,
    and glibc is told to mmap every allocation >= 64 KiB so freed tensors leave RSS at once instead of
    lingering in its arenas (otherwise a second run would reuse them unseen). The steps use a plain
    `model(input_ids, labels=ids)` loss: compare with training_estimate(..., chunked_loss=False).
    """
    import os
    import subprocess
    import sys

    defaults = dict(config=None, gguf=None, checkpointing=False, lora_rank=8, lora_dropout=0.05)
    specs = [dict(defaults, **run) for run in runs]
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0",
               TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, "-c", "import sys; from cyberslm.train.plan import _measure_child; "
                           "_measure_child(sys.stdin.read())"], input=json.dumps(specs), capture_output=True,
                          text=True, env=env, timeout=timeout)
    if proc.returncode != 0:
        raise CyberslmError(f"CPU memory measurement failed: {proc.stderr.strip().splitlines()[-1:]}")
    return [json.loads(line) for line in proc.stdout.strip().splitlines() if line.startswith("{")]


def _proc_status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise CyberslmError(f"/proc/self/status: no {field} (measurement needs Linux)")


def _measure_child(specs_json: str) -> None:
    """Child side of measure_cpu_peaks: for each run build, train two steps, print one JSON line."""
    import copy
    import ctypes
    import gc
    import warnings

    import torch
    from transformers import AutoModelForCausalLM
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    warnings.filterwarnings("ignore")
    loaded: dict[str, torch.nn.Module] = {}  # a GGUF is parsed once; each run trains a deep copy
    for spec in json.loads(specs_json):
        torch.manual_seed(0)
        if spec["gguf"]:
            gguf = Path(spec["gguf"])
            if spec["gguf"] not in loaded:
                loaded[spec["gguf"]] = AutoModelForCausalLM.from_pretrained(
                    str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32, attn_implementation="sdpa")
            model = copy.deepcopy(loaded[spec["gguf"]])
        else:
            cfg = dict(spec["config"])
            cfg_cls = CONFIG_MAPPING[cfg.pop("model_type")]
            model = AutoModelForCausalLM.from_config(cfg_cls(**cfg), dtype=torch.float32, attn_implementation="sdpa")
        model.config.use_cache = False
        if spec["method"] == "lora":
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=spec["lora_rank"], lora_alpha=spec["lora_rank"],
                                                     lora_dropout=spec["lora_dropout"], target_modules=list(LINEARS)))
        if spec["checkpointing"]:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.train()
        params = list(model.parameters())
        param_bytes = sum(p.numel() * p.element_size() for p in params)
        trainable = [p for p in params if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=1e-5, foreach=True)  # foreach: the GPU default
        ids = torch.randint(0, model.config.get_text_config().vocab_size, (spec["batch"], spec["seq_len"]))
        gc.collect()
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        rss_before = _proc_status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
        for _ in range(2):
            loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        peak = _proc_status_kib("VmHWM")
        print(json.dumps({"param_bytes": param_bytes, "trainable": sum(p.numel() for p in trainable),
                          "peak_bytes": param_bytes + (peak - rss_before) * 1024, "loss": float(loss)}), flush=True)
        del model, optimizer, params, trainable, loss
        gc.collect()
