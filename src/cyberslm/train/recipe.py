"""Recipes are YAML data; this module loads one, checks its keys and applies `--set a.b=value` overrides.

A recipe has four sections: `model` (what to load), `lora` (the adapter), `data` (how `cyberslm data sft`
builds the set and where it lands) and `training` (any `trl.SFTConfig` field, passed through as is).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from cyberslm.errors import CyberslmError

RECIPES_DIR = Path(__file__).resolve().parents[3] / "recipes"

# Known keys per section; `training` is checked against SFTConfig's fields when training starts.
SECTIONS: dict[str, set[str] | None] = {
    "name": None,
    "model": {"name_or_path", "gguf_file", "dtype", "attn_implementation", "quantization"},
    "lora": {"r", "alpha", "dropout", "target_modules"},
    "data": {"mix", "feeds", "train_file", "exclude", "seed"},
    "training": None,
}
DATA_SOURCES = ("cve_cwe", "cti_mcq", "cti_qa", "cvss")


def find_recipe(name_or_path: str | Path) -> Path:
    """A recipe file path, or a name of a file in recipes/ (with or without .yaml)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for candidate in (RECIPES_DIR / f"{name_or_path}.yaml", RECIPES_DIR / str(name_or_path)):
        if candidate.is_file():
            return candidate
    raise CyberslmError(f"recipe not found: {name_or_path} (a YAML path or a name in {RECIPES_DIR})")


def load_recipe(name_or_path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The recipe as a dict with `overrides` ("section.key=value", YAML-typed values) applied."""
    import yaml

    path = find_recipe(name_or_path)
    try:
        recipe = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CyberslmError(f"{path}: invalid YAML: {' '.join(str(exc).split())}") from exc
    if not isinstance(recipe, dict):
        raise CyberslmError(f"{path}: a recipe must be a mapping of sections")
    check_keys(recipe, str(path))
    for item in overrides or []:
        apply_override(recipe, item)
    recipe.setdefault("name", path.stem)
    return recipe


def check_keys(recipe: dict, where: str) -> None:
    """Raise a one-line error for an unknown section or key."""
    for section, value in recipe.items():
        if section not in SECTIONS:
            raise CyberslmError(f"{where}: unknown recipe section {section!r} (known: {', '.join(SECTIONS)})")
        known = SECTIONS[section]
        if known is None:
            continue
        if not isinstance(value, dict):
            raise CyberslmError(f"{where}: section {section!r} must be a mapping")
        for key in value:
            if key not in known:
                raise CyberslmError(f"{where}: unknown key {section}.{key} (known: {', '.join(sorted(known))})")
        mix = value.get("mix") if section == "data" else None
        for source in mix or {}:
            if source not in DATA_SOURCES:
                raise CyberslmError(f"{where}: unknown data.mix source {source!r} (known: {', '.join(DATA_SOURCES)})")


def apply_override(recipe: dict, item: str) -> None:
    """Set one dotted key from "a.b=value"; the value is parsed as YAML (numbers, lists, null)."""
    import yaml

    if "=" not in item:
        raise CyberslmError(f"--set {item!r}: expected KEY=VALUE, e.g. lora.r=16")
    key, raw = item.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts or parts[0] not in SECTIONS or (SECTIONS[parts[0]] is not None and len(parts) < 2):
        raise CyberslmError(f"--set {item!r}: unknown recipe key {key.strip()!r} (sections: {', '.join(SECTIONS)})")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise CyberslmError(f"--set {item!r}: value is not valid YAML") from exc
    if isinstance(value, str) and re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value):
        value = float(value)  # YAML 1.1 reads 1e-3 as a string; a user means the number
    node = recipe
    for part in parts[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise CyberslmError(f"--set {item!r}: {part} is not a section")
    node[parts[-1]] = value
    check_keys(recipe, f"--set {item!r}")
