# -*- coding: utf-8 -*-
# Copyright: baremetal.k8s contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a fleet file's text into plain data, with the checks YAML and JSON readers leave out.

- A key written twice in one mapping is an error naming both lines: readers keep the last value
  silently, so a trailing ``clusters: []`` would drop every cluster.
- Aliases (``*name``) may not expand the document past ``ALIAS_LIMIT`` values (or ``ALIAS_RATIO``
  times the values written, if more): a few hundred bytes of nested aliases otherwise expand to
  millions of values downstream (Ansible copies hostvars).
- An alias inside the block it names (a cycle) is an error.

YAML is composed into nodes by libyaml (the C loader) when available; ``_Builder`` then turns the
nodes into dicts and lists itself, which is faster than PyYAML's constructor and is where the checks
above cost nothing extra.
"""

from __future__ import annotations

import json

from .fleet_model import FleetError

ALIAS_LIMIT = 100_000
ALIAS_RATIO = 10

_STR = "tag:yaml.org,2002:str"
_MAP = "tag:yaml.org,2002:map"
_SEQ = "tag:yaml.org,2002:seq"
_MERGE = "tag:yaml.org,2002:merge"
_VALUE = "tag:yaml.org,2002:value"  # the key "=": PyYAML reads it as a string too


def decode(text, path):
    """The data of a fleet file's text: JSON when ``path`` ends in .json, YAML otherwise."""
    if path.endswith(".json"):
        return _decode_json(text, path)
    return _decode_yaml(text, path)


# --------------------------------------------------------------------------- JSON


class _DuplicateKey(FleetError):
    """A key written twice; always raised, even where other reading errors are not."""


class _DuplicateJsonKey(Exception):
    def __init__(self, key):
        super().__init__(key)
        self.key = key


def _json_object(pairs):
    result = dict(pairs)
    if len(result) != len(pairs):
        seen = set()
        raise _DuplicateJsonKey(next(pair[0] for pair in pairs if pair[0] in seen or seen.add(pair[0])))
    return result


def _decode_json(text, path):
    try:
        return json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as exc:
        raise FleetError(path, f"line {exc.lineno}", f"invalid JSON ({exc.msg})", "fix the syntax") from None
    except ValueError as exc:  # e.g. a number of more than 4300 digits
        raise FleetError(path, None, f"invalid JSON ({exc})", "fix the value the message names") from None
    except RecursionError:
        raise FleetError(path, None, "the JSON nests too deeply", "flatten the document") from None
    except _DuplicateJsonKey as dup:
        # Rare path: JSON is YAML, and the YAML reader names the lines of the duplicate.
        try:
            _decode_yaml(text, path)
        except _DuplicateKey:
            raise
        except FleetError:
            pass  # a JSON detail the YAML reader does not take: name the key only
        raise FleetError(path, None, f"key {dup.key!r} is written twice in one object",
                         "keep one of them (a YAML or JSON reader silently keeps only the last one)") from None


# --------------------------------------------------------------------------- YAML


def _decode_yaml(text, path):
    import yaml  # only needed for YAML

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _Builder(loader, path).document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FleetError(path, where, f"invalid YAML ({problem})", "fix the YAML syntax at that position") from None
    except (ValueError, RecursionError, OverflowError) as exc:  # e.g. bad timestamps, deep nesting
        raise FleetError(path, None, f"cannot read YAML ({exc})", "fix the value the message names") from None
    finally:
        loader.dispose()


def _line(node):
    return f"line {node.start_mark.line + 1}"


def _both(first, second):
    """Where two nodes are: ``line 3 and line 9``, or with columns when they share a line (one-line JSON)."""
    a, b = first.start_mark, second.start_mark
    if a.line != b.line:
        return f"line {a.line + 1} and line {b.line + 1}"
    return f"line {a.line + 1}, column {a.column + 1} and column {b.column + 1}"


class _Builder:
    """Composed YAML nodes -> plain data, checking duplicate keys, alias expansion and alias cycles."""

    def __init__(self, loader, path):
        self.loader = loader  # its SafeConstructor methods build the scalars other than strings
        self.scalar_constructors = loader.yaml_constructors
        self.path = path
        self.built = {}  # id(collection node) -> (value, expanded size); size None while being built
        self.written = 0  # nodes in the file
        self.expanded = 0  # nodes added by aliases
        self.biggest_alias = (0, None)  # (expanded size, node) of the largest alias, for the error

    def document(self, node):
        value, size = self.build(node)
        limit = max(ALIAS_LIMIT, ALIAS_RATIO * self.written)
        if self.written + self.expanded > limit:
            size, target = self.biggest_alias
            raise FleetError(
                self.path, _line(target),
                f"YAML aliases expand the document to {self.written + self.expanded:,} values "
                f"(each alias of the block at this line repeats {size:,}); the limit is {limit:,}",
                "write the repeated blocks out, or use fewer nested aliases",
            )
        return value

    def build(self, node):
        """(value, expanded size) of ``node``. Collections are built once: an alias shares the value."""
        kind = node.id
        if kind == "scalar":
            self.written += 1
            tag = node.tag
            if tag in (_STR, _VALUE):
                return node.value, 1
            constructor = self.scalar_constructors.get(tag)
            if constructor is None:
                return self.loader.construct_object(node, deep=True), 1  # PyYAML names the unknown tag
            return constructor(self.loader, node), 1
        seen = self.built.get(id(node))
        if seen is not None:
            value, size = seen
            if size is None:
                raise FleetError(self.path, _line(node), "a YAML alias refers to the block it is in",
                                 "write the block out instead of the alias")
            self.expanded += size
            if size > self.biggest_alias[0]:
                self.biggest_alias = (size, node)
            return value, size
        if node.tag not in (_MAP, _SEQ):  # !!set, !!omap, !!pairs, unknown tags: PyYAML's rules
            value = self.loader.construct_object(node, deep=True)
            self.built[id(node)] = (value, 1)
            return value, 1
        self.built[id(node)] = (None, None)
        self.written += 1
        value, size = self.mapping(node) if kind == "mapping" else self.sequence(node)
        self.built[id(node)] = (value, size)
        return value, size

    def sequence(self, node):
        items, size = [], 1
        for child in node.value:
            value, child_size = self.build(child)
            items.append(value)
            size += child_size
        return items, size

    def mapping(self, node):
        result, size = {}, 1
        lines = {}  # key -> line, for the duplicate message
        merged = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merged.append((key_node, value_node))
                continue
            key, key_size = self.build(key_node)
            try:
                line = lines.setdefault(key, key_node)
            except TypeError:
                raise FleetError(self.path, _line(key_node), "a mapping key is a list or a mapping",
                                 "use a plain word as the key") from None
            if line is not key_node:
                raise _DuplicateKey(
                    self.path, _both(line, key_node),
                    f"key {key!r} is written twice in one mapping",
                    "keep one of them (a YAML or JSON reader silently keeps only the last one)",
                )
            value, value_size = self.build(value_node)
            result[key] = value
            size += key_size + value_size
        if merged:
            result, merged_size = self.merge(merged, result)
            size += merged_size
        return result, size

    def merge(self, merged, explicit):
        """``<<: *defaults`` (or a list of them): keys written in the mapping win, then the first source."""
        result, size = {}, 0
        for key_node, value_node in merged:
            sources = value_node.value if value_node.id == "sequence" else [value_node]
            for source in reversed(sources):
                value, source_size = self.build(source)
                if not isinstance(value, dict):
                    raise FleetError(self.path, _line(key_node), "a merge key (<<) needs a mapping or a list of them",
                                     "point << at an anchored mapping, e.g. <<: *defaults")
                result.update(value)
                size += source_size
        result.update(explicit)
        return result, size
