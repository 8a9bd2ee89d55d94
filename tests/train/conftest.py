"""Train-area fixtures: a tiny randomly initialised Qwen3 model folder built offline, once per session."""

from __future__ import annotations

import json

import pytest

SENTENCES = [
    "Analyze the following CVE description and map it to the appropriate CWE.",
    "A buffer overflow in the parser allows remote attackers to execute arbitrary code.",
    "Improper neutralization of input during web page generation allows cross-site scripting.",
    "SQL injection in the login form lets attackers read the database.",
    "The last line of your response contains only the CWE ID. CWE-79 CWE-89 CWE-787 CWE-416",
    "Which technique does the adversary use? A B C D options answer question",
]
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def tiny_bpe_tokenizer(texts: list[str], specials: list[str], eos: str, pad: str, template: str,
                       bos: str | None = None, vocab_size: int = 400):
    """A byte-level BPE tokenizer trained on `texts`, with the given special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials,
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=eos, pad_token=pad, bos_token=bos)
    tokenizer.chat_template = template
    return tokenizer


def build_tiny_qwen3(folder) -> str:
    """A 2-layer, hidden-64 Qwen3 causal LM with a byte-level BPE tokenizer and a ChatML template."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    tokenizer = tiny_bpe_tokenizer(SENTENCES, ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], "<|im_end|>",
                                   "<|endoftext|>", CHAT_TEMPLATE)
    tokenizer.save_pretrained(folder)

    torch.manual_seed(0)
    config = Qwen3Config(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=512,
        tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    Qwen3ForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_qwen3_dir(tmp_path_factory):
    """Path (str) of a tiny random Qwen3 model folder (safetensors + tokenizer with chat template)."""
    return build_tiny_qwen3(tmp_path_factory.mktemp("tiny-qwen3"))


def write_chat_jsonl(path, n: int = 8) -> str:
    """n short CVE->CWE chats in the `cyberslm data sft` format."""
    rows = []
    for i in range(n):
        cwe = ["CWE-79", "CWE-89"][i % 2]
        rows.append({"id": f"t{i}", "source": "cve_cwe", "messages": [
            {"role": "user", "content": f"{SENTENCES[1 + i % 3]} CVE Description: item {i}"},
            {"role": "assistant", "content": f"The weakness is {cwe}.\n{cwe}"},
        ]})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


@pytest.fixture
def chat_jsonl(tmp_path):
    return write_chat_jsonl(tmp_path / "train.jsonl")
