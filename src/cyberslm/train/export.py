"""`cyberslm export gguf MODEL_DIR -o OUT.gguf`: a merged model as one GGUF file, plus an Ollama Modelfile.

The conversion lives in train/gguf_writer.py. The Modelfile matters as much as the weights: Ollama formats
prompts with the Modelfile's TEMPLATE, and a fine-tuned model prompted without its chat markers answers
garbage. We translate the two template families our base models use (ChatML: Qwen, SmolLM2; Llama 3).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from cyberslm.errors import CyberslmError

# Ollama Go templates for the chat formats, and the tokens that end an assistant turn.
CHATML_TEMPLATE = """{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""
LLAMA3_TEMPLATE = """{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}<|start_header_id|>assistant<|end_header_id|>

"""
TEMPLATES = {
    "chatml": (CHATML_TEMPLATE, ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]),
    "llama3": (LLAMA3_TEMPLATE, ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]),
}
DEFAULT_TEMPERATURE = 0.2  # triage and CTI answers want near-deterministic output


def template_family(chat_template: str | None) -> str | None:
    """'chatml' or 'llama3' from the markers a Jinja chat template writes; None if neither."""
    if not chat_template:
        return None
    if "<|im_start|>" in chat_template:
        return "chatml"
    if "<|start_header_id|>" in chat_template:
        return "llama3"
    return None


def modelfile_text(gguf_name: str, chat_template: str | None, temperature: float, where: str) -> str:
    """An Ollama Modelfile for ./GGUF_NAME with TEMPLATE, stop PARAMETERs and temperature."""
    family = template_family(chat_template)
    if family is None:
        raise CyberslmError(f"{where}: no ChatML or Llama 3 chat template to translate for Ollama "
                            "(without a TEMPLATE a fine-tuned model answers garbage); write the Modelfile by hand")
    template, stops = TEMPLATES[family]
    lines = [f"FROM ./{gguf_name}", f'TEMPLATE """{template}"""']
    lines += [f'PARAMETER stop "{stop}"' for stop in stops]
    lines.append(f"PARAMETER temperature {temperature:g}")
    return "\n".join(lines) + "\n"


def _temperature(model_dir: Path) -> float:
    config = model_dir / "generation_config.json"
    if config.is_file():
        value = json.loads(config.read_text(encoding="utf-8")).get("temperature")
        if isinstance(value, int | float):
            return float(value)
    return DEFAULT_TEMPERATURE


def gguf_command(
    model_dir: Annotated[Path, typer.Argument(help="Merged Hugging Face model folder (config.json + safetensors).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="GGUF file to write.")],
    outtype: Annotated[str, typer.Option(help="f32, f16, bf16, q8_0, q5_1, q5_0, q4_1 or q4_0 "
                                              "(K-quants like q4_k_m: see the llama-quantize step it prints).")] = "f16",
    modelfile: Annotated[bool, typer.Option("--modelfile", help="Also write an Ollama Modelfile next to it.")] = False,
) -> None:
    """Convert a merged llama / qwen2 / qwen3 model to GGUF for llama.cpp and Ollama (no llama.cpp needed)."""
    from cyberslm.train.gguf_writer import convert

    summary = convert(model_dir, output, outtype)
    typer.echo(f"wrote {output} ({summary['architecture']}, {summary['tensors']} tensors, {outtype}, "
               f"{summary['bytes'] / 2**20:.1f} MiB)")
    if not summary["chat_template"]:
        typer.echo(f"warning: {model_dir} has no chat template; chat front-ends will not format prompts", err=True)
    if modelfile:
        path = output.with_name("Modelfile")
        text = modelfile_text(output.name, summary["chat_template"], _temperature(model_dir), str(model_dir))
        path.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {path}; run: ollama create NAME -f {path}")
    if outtype.lower() == "f16":
        typer.echo("for a 4-bit file run llama.cpp's: " + _quantize_hint(output))


def _quantize_hint(output: Path) -> str:
    from cyberslm.train.gguf_writer import llama_quantize_command

    return llama_quantize_command(output, "q4_k_m")
