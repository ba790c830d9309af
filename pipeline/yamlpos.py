"""YAML text to plain Python data plus the line of every path in it, for located error messages.

Safe loading only (no Python tags), duplicate mapping keys and non-string keys are errors,
aliases and merge keys (`<<: *base`) work, and recursive or exploding aliases are refused.
A syntax error stops the parse (with a hint where the cause is a common trap: a tab, an indentation
that lines up with nothing, a ': ' inside unquoted text); the other problems are recorded in the
`Tree`, so the manifest's own checks still run on the rest of the document.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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
    """A parsed YAML document: its plain value, the 1-based line of each path in it, and what went wrong.

    `problems` are the document's own (a duplicate key, a value that cannot be read, an unsupported tag);
    `damaged` the paths whose value is not what was written (a problem there is already recorded);
    `flow` the paths of mappings written in flow style (`{a: 1, b: 2}`).
    """

    value: Any
    lines: Mapping[Path, int]
    source: str
    problems: tuple[Problem, ...] = ()
    damaged: frozenset[Path] = field(default_factory=frozenset)
    flow: frozenset[Path] = field(default_factory=frozenset)

    def is_damaged(self, path: Path) -> bool:
        """Whether `path` or a path containing it holds a value that could not be read as written."""
        return any(path[:end] in self.damaged for end in range(len(path) + 1))

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
    """Parse one YAML document. A syntax error, or a document too large or too deep, raises ManifestError;
    other problems (duplicate keys, unreadable values) are in the returned `Tree`, to be reported with the rest."""
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
    if builder.fatal:
        raise ManifestError(builder.problems)
    return Tree(value, builder.lines, source, tuple(builder.problems), frozenset(builder.damaged),
                frozenset(builder.flow))


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
        elif isinstance(exc, yaml.MarkedYAMLError):
            hinted = _syntax_hint(exc, text.splitlines())
            if hinted is not None:
                line, message = hinted
    return Problem("", f"YAML syntax error: {message}", line=line, source=source)


_KEY_VALUE = re.compile(r"\s*(?:-\s+)*([^\s:#'\"][^:#]*?):\s+(\S.*?)\s*$")


def _syntax_hint(exc: yaml.MarkedYAMLError, lines: list[str]) -> tuple[int, str] | None:
    """(line, message) in plain words for the syntax errors a user typically makes, or None.

    A tab in the indentation; a line indented so that it lines up with no block (compared with the
    line above); a ': ' inside an unquoted value, which YAML reads as the start of a mapping."""
    mark, problem = exc.problem_mark, str(exc.problem or "")
    if mark is None or mark.line >= len(lines) and "could not find expected ':'" not in problem:
        return None
    if "found character '\\t'" in problem:
        text = lines[mark.line]
        if not text[:mark.column].strip(" -"):
            return mark.line + 1, "the line is indented with a tab: indent with spaces (YAML allows no tabs there)"
        return mark.line + 1, f"a tab at column {mark.column + 1}: use spaces (YAML allows no tabs there)"
    in_flow = problem.endswith("but got ':'") and "flow mapping" in str(exc.context or "") \
        and exc.context_mark is not None and exc.context_mark.line == mark.line
    if problem == "mapping values are not allowed here" or in_flow:
        text = lines[mark.line]
        before = text[:mark.column]
        if in_flow or re.search(r":\s", before.lstrip(" -")):
            found = _KEY_VALUE.match(text)
            example = f" ({found[1]}: {quoted(found[2])})" if found and problem.startswith("mapping") else ""
            return mark.line + 1, ("a ': ' inside an unquoted value starts a new key; quote the text" + example)
        return _indent_hint(lines, mark.line)
    if problem.startswith("expected <block end>"):
        return _indent_hint(lines, mark.line)
    if "could not find expected ':'" in problem and exc.context_mark is not None:
        row = exc.context_mark.line
        return row + 1, (f"expected 'key: value' or '- item' (with a space after ':' and '-'), "
                         f"not {lines[row].strip()[:40]!r}")
    return None


def _indent_hint(lines: list[str], row: int) -> tuple[int, str] | None:
    """The indentation of the line at `row` against the nearest line above that holds something, in words.

    A line that starts with '- ' is compared by its dash, any other by its key (after the dashes above)."""
    above = next((i for i in range(row - 1, -1, -1) if lines[i].strip() and not lines[i].lstrip().startswith("#")),
                 None)
    if above is None:
        return None
    here = _indent(lines[row])
    item = lines[row].lstrip(" ").startswith("-")
    there = _indent(lines[above]) if item else _key_column(lines[above])
    if here == there:
        return None
    what = "the item" if item else "the key"
    if here > there:
        return row + 1, (f"line {row + 1} is indented further than {what} on line {above + 1} ({_spaces(here)}, "
                         f"not {there}), so YAML reads it as part of line {above + 1}'s value: keys of one mapping "
                         "must line up (a nested block goes under a key that ends with ':')")
    return row + 1, (f"line {row + 1} is indented by {_spaces(here)} and {what} on line {above + 1} by {there}: "
                     "keys of one mapping, and items of one list, must line up (indent with spaces)")


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip(" "))


def _key_column(text: str) -> int:
    """Where the key of a line starts: after its indentation and any '- ' list markers."""
    found = re.match(r"[ ]*(?:-[ ]+)*", text)
    return found.end() if found else 0


def _spaces(count: int) -> str:
    return "1 space" if count == 1 else f"{count} spaces"


def quoted(text: str) -> str:
    """`text` as a YAML double-quoted scalar (`A: b` -> `"A: b"`)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class _Builder:
    """Walks the composed node graph once, building values and recording lines and problems."""

    def __init__(self, loader: yaml.SafeLoader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.lines: dict[Path, int] = {}
        self.problems: list[Problem] = []
        self.active: set[int] = set()  # nodes on the current walk: an alias to one of them is a cycle
        self.budget = MAX_NODES
        self.fatal = False  # too large or too deep: what was built cannot be checked further
        self.damaged: set[Path] = set()
        self.flow: set[Path] = set()

    def fail(self, path: Path, node: Node, message: str, *, damaged: bool = True) -> None:
        self.problems.append(Problem(format_path(path), message, line=node.start_mark.line + 1, source=self.source))
        if damaged:
            self.damaged.add(path)

    def build(self, node: Node, path: Path) -> Any:
        self.lines.setdefault(path, node.start_mark.line + 1)
        self.budget -= 1
        if self.budget < 0:
            if self.budget == -1:
                self.fail(path, node, f"the document is too large (over {MAX_NODES} values once aliases are expanded)")
            self.fatal = True
            return None
        if len(path) > MAX_DEPTH:
            self.fail(path, node, f"nested too deeply (over {MAX_DEPTH} levels)")
            self.fatal = True
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
                if node.flow_style:
                    self.flow.add(path)
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
                self.fail((*path, key), key_node, f"duplicate key {key!r} (first given on line {first_line[key]})",
                          damaged=False)  # the first one is checked as written
                continue
            first_line[key] = line
            self.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key))
        for merged in merges:  # `<<: *base` or `<<: [*a, *b]`: explicit keys win, then the first merged
            sources = merged.value if isinstance(merged, SequenceNode) else [merged]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.fail(path, source, "'<<' (merge) expects a mapping or a list of mappings", damaged=False)
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
            self.fail(path, node, f"keys must be text, not {shown} (quote it: '{node.value}')", damaged=False)
        else:
            self.fail(path, node, "keys must be text, not a list or mapping", damaged=False)
        return None
