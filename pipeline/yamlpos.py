"""YAML text to plain Python data plus the line of every path in it, for located error messages.

Safe loading only (no Python tags), duplicate mapping keys and non-string keys are errors,
aliases and merge keys (`<<: *base`) work, and recursive or exploding aliases are refused.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline.errors import ManifestError, Problem

Path = tuple[str | int, ...]

MAX_NODES = 200_000  # after expanding aliases: refuses "billion laughs" documents
MAX_DEPTH = 50
MAX_FILE_BYTES = 8 * 2**20  # far above any document of MAX_NODES values; stops /dev/zero or a video given by mistake


def read_capped(path: str | os.PathLike[str]) -> bytes:
    """A YAML file's bytes; ValueError when it is over MAX_FILE_BYTES (OSError when it cannot be read)."""
    with open(path, "rb") as stream:
        data = stream.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"the file is over {MAX_FILE_BYTES // 2**20} MiB, too large for a YAML document "
                         "(is it the right file?)")
    return data


_MERGE_TAG = "tag:yaml.org,2002:merge"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MAP_TAG = "tag:yaml.org,2002:map"
# What a malformed tagged scalar (`!!int x`, `!!timestamp 2020-13-45`, `!!bool maybe`) raises.
_SCALAR_ERRORS = (yaml.YAMLError, ValueError, TypeError, LookupError, ArithmeticError, AttributeError)


def format_path(path: Path) -> str:
    """`("batches", 0, "sweep", "videoStrength", 2)` -> `batches[0].sweep.videoStrength[2]`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe(value: Any) -> str:
    """How a YAML value is named in messages: `the number 3`, `a list`, `null`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value[:40]!r}"
    return {list: "a list", dict: "a mapping"}.get(type(value), f"a {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Tree:
    """A parsed YAML document: its plain value and the 1-based line of each path in it."""

    value: Any
    lines: Mapping[Path, int]
    source: str

    def line(self, path: Path) -> int | None:
        """The line of `path`, or of its nearest ancestor that has one."""
        for end in range(len(path), -1, -1):
            if (found := self.lines.get(path[:end])) is not None:
                return found
        return None

    def problem(self, path: Path, message: str) -> Problem:
        """A Problem located at `path` (its dotted form and its line)."""
        return Problem(format_path(path), message, line=self.line(path), source=self.source)


def parse(text: str, source: str) -> Tree:
    """Parse one YAML document; raise ManifestError listing every problem found in it."""
    loader: yaml.SafeLoader | None = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        if node is None:
            raise ManifestError(Problem("", "the file is empty (expected a mapping: name, inputs, prompts, ...)",
                                        line=1, source=source))
        builder = _Builder(loader, source)
        value = builder.build(node, ())
    except yaml.YAMLError as exc:
        raise ManifestError(_syntax_problem(exc, text, source)) from None
    except RecursionError:
        raise ManifestError(Problem("", "the YAML is nested too deeply", source=source)) from None
    finally:
        if loader is not None:
            loader.dispose()
    if builder.problems:
        raise ManifestError(builder.problems)
    return Tree(value, builder.lines, source)


def _syntax_problem(exc: yaml.YAMLError, text: str, source: str) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        line = mark.line + 1
    elif isinstance(exc, yaml.reader.ReaderError):
        line = text.count("\n", 0, max(exc.position, 0)) + 1
    else:
        line = None
    if isinstance(exc, yaml.reader.ReaderError):
        char = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        message = f"character {char} is not allowed in YAML ({exc.reason})"
    else:
        parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
        message = ", ".join(str(p) for p in parts if p) or str(exc)
        if "expected a single document" in message:
            message = "the file holds more than one YAML document (remove the '---' separators)"
    return Problem("", f"YAML syntax error: {message}", line=line, source=source)


class _Builder:
    """Walks the composed node graph once, building values and recording lines and problems."""

    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self.active: set[int] = set()  # nodes on the current walk: an alias to one of them is a cycle
        self.budget = MAX_NODES

    def fail(self, path: Path, node: Node, message: str) -> None:
        self.problems.append(Problem(format_path(path), message, line=node.start_mark.line + 1, source=self.source))

    def build(self, node: Node, path: Path) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        self.budget -= 1
        if self.budget < 0:
            if self.budget == -1:
                self.fail(path, node, f"the document is too large (over {MAX_NODES} values once aliases are expanded)")
            return None
        if len(path) > MAX_DEPTH:
            self.fail(path, node, f"nested too deeply (over {MAX_DEPTH} levels)")
            return None
        if id(node) in self.active:
            self.fail(path, node, "an alias refers to a value that contains it (recursive alias)")
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, ScalarNode):
                return self.scalar(node, path)
            if isinstance(node, SequenceNode):
                if node.tag != _SEQ_TAG:
                    self.fail(path, node, f"unsupported YAML tag {node.tag!r}")
                return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                if node.tag != _MAP_TAG:
                    self.fail(path, node, f"unsupported YAML tag {node.tag!r}")
                return self.mapping(node, path)
            self.fail(path, node, "unsupported YAML node")
            return None
        finally:
            self.active.discard(id(node))

    def scalar(self, node: ScalarNode, path: Path) -> Any:
        try:
            return self.loader.construct_object(node)
        except _SCALAR_ERRORS as exc:
            reason = getattr(exc, "problem", None) or str(exc) or type(exc).__name__
            self.fail(path, node, f"cannot read the value {node.value[:40]!r} ({reason})")
            return None

    def mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merges.append(value_node)
                continue
            key = self.key(key_node, path)
            if key is None:
                continue
            line = key_node.start_mark.line + 1
            if key in first_line:
                self.fail((*path, key), key_node, f"duplicate key {key!r} (first given on line {first_line[key]})")
                continue
            first_line[key] = line
            self.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key))
        for merged in merges:  # `<<: *base` or `<<: [*a, *b]`: explicit keys win, then the first merged
            sources = merged.value if isinstance(merged, SequenceNode) else [merged]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.fail(path, source, "'<<' (merge) expects a mapping or a list of mappings")
                    continue
                built = self.build(source, path)
                for key, value in (built or {}).items():
                    out.setdefault(key, value)
        return out

    def key(self, node: Node, path: Path) -> str | None:
        if isinstance(node, ScalarNode):
            value = self.scalar(node, path)
            if isinstance(value, str):
                return value
            shown = "null" if value is None else repr(value)
            self.fail(path, node, f"keys must be text, not {shown} (quote it: '{node.value}')")
        else:
            self.fail(path, node, "keys must be text, not a list or mapping")
        return None
