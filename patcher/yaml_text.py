"""Locate YAML nodes by position and edit the text around them line by line.

ruamel.yaml's parser reports where every node starts and ends. The edits here
insert or replace whole lines at those positions, so every byte the patch does
not touch stays as it was. Nothing is ever dumped from a parsed document.
"""

from __future__ import annotations

import bisect
import functools
import re
from dataclasses import dataclass, field

from ruamel.yaml import YAML
from ruamel.yaml import events as yaml_events
from ruamel.yaml.composer import ComposerError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from patcher.errors import InputError
from patcher.textio import line_ending

SCALAR = "scalar"
MAPPING = "mapping"
SEQUENCE = "sequence"
ALIAS = "alias"

BLOCK_SCALAR_STYLES = ("|", ">")
DEFAULT_INDENT_STEP = 2


@dataclass
class Node:
    """One YAML node with its place in the text; `start` and `end` are character offsets."""

    kind: str
    start: int
    end: int
    value: str = ""
    style: str | None = None
    flow: bool = False
    anchor: str | None = None
    pairs: list[tuple[Node, Node]] = field(default_factory=list)
    items: list[Node] = field(default_factory=list)

    @property
    def is_empty_scalar(self) -> bool:
        """True for a key written with no value (`key:`), which parses as an empty plain scalar."""
        return self.kind == SCALAR and self.style is None and self.value == ""

    @property
    def is_block_mapping(self) -> bool:
        return self.kind == MAPPING and not self.flow

    def get(self, key: str) -> tuple[Node, Node] | None:
        """Return the (key, value) pair of a mapping whose key is the scalar `key`."""
        for key_node, value_node in self.pairs:
            if key_node.kind == SCALAR and key_node.value == key:
                return key_node, value_node
        return None


def yaml_error(error: YAMLError, shown_as: str, what: str = "not valid YAML") -> InputError:
    """Turn a ruamel.yaml error into a one-line InputError with its 1-based line and column."""
    if isinstance(error, MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        problem = error.problem or "syntax error"
        return InputError(shown_as, f"{what}: {problem}", mark.line + 1, mark.column + 1)
    return InputError(shown_as, f"{what}: {error}")


def load_data(text: str, shown_as: str) -> object:
    """Load the text as plain Python data, the way GitHub reads a workflow (YAML 1.2: `on:` stays a string).

    Each distinct text is loaded once and the result is shared between callers,
    so no caller may change it.
    """
    try:
        return _load_data(text)
    except ComposerError as error:
        if error.context != "expected a single document in the stream" or error.problem_mark is None:
            raise yaml_error(error, shown_as) from None
        mark = error.problem_mark
        raise InputError(shown_as, "expected one YAML document, found another", mark.line + 1, mark.column + 1) from None
    except YAMLError as error:
        raise yaml_error(error, shown_as) from None


# A patch loads the original and the patched text, each several times: in the patch, its check and the validator.
@functools.lru_cache(maxsize=4)
def _load_data(text: str) -> object:
    return YAML(typ="safe", pure=True).load(text)


def compose(text: str, shown_as: str) -> Node:
    """Parse the text into a tree of positioned nodes; reject anything but one YAML document."""
    try:
        events = list(YAML(typ="rt").parse(text))
    except YAMLError as error:
        raise yaml_error(error, shown_as) from None

    documents = [event for event in events if isinstance(event, yaml_events.DocumentStartEvent)]
    if len(documents) != 1:
        raise InputError(shown_as, f"expected one YAML document, found {len(documents)}")

    body = [event for event in events if not isinstance(event, _FRAME_EVENTS)]
    root, _ = _build(body, 0)
    return root


_FRAME_EVENTS = (
    yaml_events.StreamStartEvent,
    yaml_events.StreamEndEvent,
    yaml_events.DocumentStartEvent,
    yaml_events.DocumentEndEvent,
)


def _build(events: list, position: int) -> tuple[Node, int]:
    event = events[position]
    start, end = event.start_mark.index, event.end_mark.index
    anchor = getattr(event, "anchor", None)

    if isinstance(event, yaml_events.AliasEvent):
        return Node(ALIAS, start, end, value=event.anchor), position + 1
    if isinstance(event, yaml_events.ScalarEvent):
        return Node(SCALAR, start, end, value=event.value, style=event.style, anchor=anchor), position + 1

    flow = bool(event.flow_style)
    if isinstance(event, yaml_events.MappingStartEvent):
        node = Node(MAPPING, start, end, flow=flow, anchor=anchor)
        position += 1
        while not isinstance(events[position], yaml_events.MappingEndEvent):
            key, position = _build(events, position)
            value, position = _build(events, position)
            node.pairs.append((key, value))
    else:
        node = Node(SEQUENCE, start, end, flow=flow, anchor=anchor)
        position += 1
        while not isinstance(events[position], yaml_events.SequenceEndEvent):
            item, position = _build(events, position)
            node.items.append(item)

    node.end = events[position].end_mark.index
    return node, position + 1


def walk(node: Node):
    """Yield the node and every node below it, keys included."""
    yield node
    for key, value in node.pairs:
        yield from walk(key)
        yield from walk(value)
    for item in node.items:
        yield from walk(item)


def aliased_anchors(root: Node) -> set[str]:
    return {node.value for node in walk(root) if node.kind == ALIAS}


# YAML's own line breaks. str.splitlines would also split on form feeds and U+2028.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")


class SourceLines:
    """The text as a list of lines, each split from its line ending, addressed by 0-based index."""

    def __init__(self, text: str):
        self.text = text
        self.eol = line_ending(text)
        pieces = _LINE.findall(text)
        self.lines = [piece.rstrip("\r\n") for piece in pieces]
        self.endings = [piece[len(line):] for piece, line in zip(pieces, self.lines)]
        self.starts = [0]
        for piece in pieces[:-1]:
            self.starts.append(self.starts[-1] + len(piece))

    def line_of(self, offset: int) -> int:
        return bisect.bisect_right(self.starts, offset) - 1

    def column_of(self, offset: int) -> int:
        return offset - self.starts[self.line_of(offset)]

    def last_line(self, node: Node) -> int | None:
        """Return the index of the last line that contains text of the node, ignoring comments after it.

        An empty scalar (`key:`) contains no text and gives None.
        """
        if node.kind == SCALAR:
            return self._last_scalar_line(node)
        if node.kind == ALIAS or node.flow:
            return self.line_of(node.end - 1)

        candidates = []
        for key, value in node.pairs[-1:]:
            candidates += [self.last_line(key), self.last_line(value)]
        for item in node.items[-1:]:
            candidates.append(self.last_line(item))
        present = [line for line in candidates if line is not None]
        return max(present) if present else None

    def _last_scalar_line(self, node: Node) -> int | None:
        if node.is_empty_scalar:
            return None
        if node.style not in BLOCK_SCALAR_STYLES:
            return self.line_of(node.end - 1)

        # A block scalar ends at the indentation of the next token's line, or at the end of the text.
        # Its trailing blank lines are not text.
        if node.end >= len(self.text):
            line = self.line_of(len(self.text) - 1)
        else:
            line = self.line_of(node.end)
            if not self.text[self.starts[line] : node.end].strip():
                line -= 1
        header = self.line_of(node.start)
        while line > header and not self.lines[line].strip():
            line -= 1
        return line

    def block_lines(self, node: Node) -> range:
        """Return the indices of the content lines of a block scalar, header excluded."""
        header = self.line_of(node.start)
        last = self._last_scalar_line(node)
        return range(header + 1, (last if last is not None else header) + 1)


def scalar_spans(source: SourceLines, node: Node) -> list[tuple[int, int, int]]:
    """Return (line, first column, end column) for each line of a scalar's text; a block scalar's header is left out."""
    if node.style in BLOCK_SCALAR_STYLES:
        return [(line, 0, len(source.lines[line])) for line in source.block_lines(node)]

    first, last = source.line_of(node.start), source.line_of(max(node.end - 1, node.start))
    spans = []
    for line in range(first, last + 1):
        start = source.column_of(node.start) if line == first else 0
        end = source.column_of(node.end) if line == last and node.end > node.start else len(source.lines[line])
        spans.append((line, start, end))
    return spans


def render_flow_scalar(value: str, style: str | None) -> str:
    """Write a value as a plain, single-quoted or double-quoted scalar, escaping what that style needs."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style == '"':
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def indent_step(root: Node, source: SourceLines) -> int:
    """Return how many columns the file indents a nested block mapping, 2 when it nests none."""
    for node in walk(root):
        if not node.is_block_mapping:
            continue
        for key, value in node.pairs:
            if value.is_block_mapping and value.pairs:
                step = source.column_of(value.pairs[0][0].start) - source.column_of(key.start)
                if step > 0:
                    return step
    return DEFAULT_INDENT_STEP


class LineEditor:
    """Collect whole-line replacements and insertions, then build the new text in one pass.

    New lines get the file's dominant line ending. Lines not named in an edit
    keep their bytes, their own line endings included.
    """

    def __init__(self, source: SourceLines):
        self.source = source
        self._replacements: dict[int, tuple[int, list[str]]] = {}
        self._insertions: dict[int, list[str]] = {}

    def replace(self, first: int, last: int, lines: list[str]) -> None:
        """Replace lines first..last (inclusive) with the given lines."""
        for taken_first, (taken_last, _) in self._replacements.items():
            if first <= taken_last and taken_first <= last:
                raise ValueError(f"lines {first}..{last} overlap an earlier replacement")
        self._replacements[first] = (last, lines)

    def insert_after(self, line: int, lines: list[str]) -> None:
        self._insertions.setdefault(line, []).extend(lines)

    def current_line(self, index: int) -> str:
        """Return a line's text with the single-line replacement made so far, so that later edits build on it."""
        taken = self._replacements.get(index)
        if taken is not None and taken[0] == index and len(taken[1]) == 1:
            return taken[1][0]
        return self.source.lines[index]

    def set_line(self, index: int, text: str) -> None:
        """Replace one line, or the single-line replacement an earlier edit made of it."""
        taken = self._replacements.get(index)
        if taken is not None and taken[0] == index and len(taken[1]) == 1:
            del self._replacements[index]
        self.replace(index, index, [text])

    @property
    def changed(self) -> bool:
        return bool(self._replacements or self._insertions)

    def text(self) -> str:
        source = self.source
        output: list[str] = []
        index = 0
        while index < len(source.lines):
            last = index
            if index in self._replacements:
                last, lines = self._replacements[index]
                output += [line + source.eol for line in lines]
                if lines:
                    output[-1] = lines[-1] + source.endings[last]
            else:
                output.append(source.lines[index] + source.endings[index])
            if last in self._insertions:
                output = self._append_inserted(output, self._insertions[last])
            index = last + 1
        return "".join(output)

    def _append_inserted(self, output: list[str], lines: list[str]) -> list[str]:
        eol = self.source.eol
        if output and not output[-1].endswith(("\n", "\r")):
            # The file ends without a final newline: it stays so after the inserted lines.
            output[-1] += eol
            return output + [line + eol for line in lines[:-1]] + [lines[-1]]
        return output + [line + eol for line in lines]
