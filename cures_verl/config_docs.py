"""Render the config dataclasses' attribute docstrings as the Hydra YAML block and the docs table.

The dataclasses in :mod:`cures_verl.config` are the single source of truth. This module turns them into
``cures_verl/verl_adapter/config/cures_trainer.yaml``'s ``cures:`` block (each key's default is an
interpolation into the selected preset) and the key table of ``docs/configuration.md``; a test checks
that both committed files are what these functions produce. Standard library only.

Regenerate after changing a field: ``python scripts/render_config.py``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from dataclasses import dataclass
from typing import Any, get_args

from cures_verl import config as config_module
from cures_verl.config import PRESETS, CuresConfig, preset_config

__all__ = ["FieldDoc", "field_docs", "render_cures_yaml_block", "render_docs_table"]

#: Keys that are not taken from the preset (the preset key itself, and the on/off switch).
NOT_FROM_PRESET = ("enable", "preset", "dump_dir", "posterior.prior_path")
#: Name of the OmegaConf resolver that looks a key up in the selected preset.
RESOLVER = "cures_preset"


@dataclass(frozen=True)
class FieldDoc:
    """One config key: dotted path below ``cures.``, type annotation, default and description."""

    key: str
    annotation: str
    default: Any
    doc: str
    is_section: bool


def _attribute_docstrings(cls: type) -> dict[str, str]:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str):
                docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def field_docs(cls: type = CuresConfig, prefix: str = "") -> list[FieldDoc]:
    """Every key of ``cls`` (recursively), in declaration order, with its docstring.

    Raises:
        ValueError: If a field has no attribute docstring (every key must be documented).
    """
    docs = _attribute_docstrings(cls)
    defaults = cls()
    out: list[FieldDoc] = []
    for f in dataclasses.fields(cls):
        if f.name not in docs:
            raise ValueError(f"config field {cls.__name__}.{f.name} has no attribute docstring")
        value = getattr(defaults, f.name)
        annotation = _describe_type(str(f.type))
        if dataclasses.is_dataclass(value):
            out.append(FieldDoc(prefix + f.name, annotation, None, docs[f.name], True))
            out.extend(field_docs(type(value), prefix + f.name + "."))
        else:
            out.append(FieldDoc(prefix + f.name, annotation, value, docs[f.name], False))
    return out


def _describe_type(annotation: str) -> str:
    """``SamplingScore`` -> ``mean | thompson | ...`` for the Literal aliases of cures_verl.config."""
    alias = getattr(config_module, annotation, None)
    choices = get_args(alias) if alias is not None else ()
    return " | ".join(map(str, choices)) if choices else annotation


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _wrap_comment(text: str, indent: str, width: int = 118) -> list[str]:
    return textwrap.wrap(text, width=width - len(indent) - 2, initial_indent="", subsequent_indent="") or [""]


def render_cures_yaml_block() -> str:
    """The ``cures:`` block of cures_trainer.yaml (verl's YAML rules: comment above each key, blank lines)."""
    lines = ["# CurES settings (cures_verl/config.py); each value defaults to the selected preset's.", "cures:", ""]
    for item in field_docs():
        depth = item.key.count(".") + 1
        indent = "  " * depth
        lines.extend(f"{indent}# {line}" for line in _wrap_comment(item.doc, indent))
        name = item.key.rsplit(".", 1)[-1]
        if item.is_section:
            lines.append(f"{indent}{name}:")
        elif item.key in NOT_FROM_PRESET:
            lines.append(f"{indent}{name}: {_yaml_scalar(item.default)}")
        else:
            lines.append(f"{indent}{name}: ${{{RESOLVER}:{item.key}}}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def render_docs_table() -> str:
    """Markdown table of every key with its paper default and the values of the other presets."""
    others = [name for name in PRESETS if name != "paper"]
    preset_dicts = {name: preset_config(name).to_dict() for name in PRESETS}

    def lookup(tree: dict[str, Any], key: str) -> Any:
        for part in key.split("."):
            tree = tree[part]
        return tree

    header = "| key | type | default (`paper`) | " + " | ".join(f"`{n}`" for n in others) + " | description |"
    rule = "|" + "---|" * (4 + len(others))
    rows = [header, rule]
    for item in field_docs():
        if item.is_section:
            continue
        cells = []
        for name in others:
            value = lookup(preset_dicts[name], item.key)
            cells.append("" if value == item.default or item.key in NOT_FROM_PRESET else f"`{_yaml_scalar(value)}`")
        annotation = item.annotation.replace("|", "\\|")
        rows.append(
            f"| `cures.{item.key}` | `{annotation}` | `{_yaml_scalar(item.default)}` | "
            + " | ".join(cells)
            + f" | {item.doc} |"
        )
    return "\n".join(rows) + "\n"
