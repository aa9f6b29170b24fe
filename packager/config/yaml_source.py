"""Read config.yaml into plain data plus the position of every key and value.

PyYAML's composer gives nodes with marks; we construct the data ourselves from the node tree so
each path (("model_cache", 1, "volume_folder")) maps to its line and column, and so duplicate
keys are an error naming both lines (Truss only warns about them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path = tuple[Any, ...]


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    column: int  # 1-based

    @classmethod
    def of(cls, mark: yaml.Mark) -> Mark:
        return cls(mark.line + 1, mark.column + 1)


@dataclass(frozen=True)
class Duplicate:
    path: Path
    first: Mark
    second: Mark


@dataclass
class YamlDocument:
    data: Any
    key_marks: dict[Path, Mark] = field(default_factory=dict)
    value_marks: dict[Path, Mark] = field(default_factory=dict)
    duplicates: list[Duplicate] = field(default_factory=list)

    def position(self, path: Path, prefer_key: bool = False) -> Mark | None:
        """Nearest known position for path, walking up to a parent when the key is absent."""
        probe = tuple(path)
        while True:
            order = (self.key_marks, self.value_marks) if prefer_key else (self.value_marks, self.key_marks)
            for marks in order:
                if probe in marks:
                    return marks[probe]
            if not probe:
                return None
            # A missing key is best shown where its parent's entries start (where to add it).
            probe = probe[:-1]
            prefer_key = False


class YamlSyntaxError(Exception):
    def __init__(self, message: str, mark: Mark | None):
        super().__init__(message)
        self.message = message
        self.mark = mark


def parse(text: str) -> YamlDocument:
    """Parse one YAML document; raise YamlSyntaxError with its position on bad syntax."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        doc = YamlDocument(data=None)
        if node is not None:
            doc.data = _walk(loader, node, (), doc)
        return doc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or str(exc)
        if exc.context:
            problem = f"{problem} ({exc.context})"
        raise YamlSyntaxError(problem, Mark.of(mark) if mark else None) from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(str(exc), None) from None
    finally:
        loader.dispose()


def _walk(loader: yaml.SafeLoader, node: yaml.Node, path: Path, doc: YamlDocument) -> Any:
    doc.value_marks[path] = Mark.of(node.start_mark)
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve `<<: *anchor` merges in place
        result: dict[Any, Any] = {}
        first_seen: dict[Any, Mark] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                )
            key_mark = Mark.of(key_node.start_mark)
            if key in first_seen:
                doc.duplicates.append(Duplicate(path + (key,), first_seen[key], key_mark))
            first_seen[key] = key_mark
            doc.key_marks[path + (key,)] = key_mark
            result[key] = _walk(loader, value_node, path + (key,), doc)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_walk(loader, item, path + (i,), doc) for i, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)
