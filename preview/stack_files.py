"""Read `Pulumi.yaml` and `Pulumi.<stack>.yaml` the way the Pulumi CLI does, without the CLI.

What the CLI hands a program: every key namespaced (`task-service:db`, `aws:region`; the project's own keys may be
written bare), project-level values and declared defaults filled in, declared types enforced, structured values
passed as JSON text, and `secure:` values decrypted. We cannot decrypt, so secure values are marked secret and
replaced by a placeholder that says so.

What it does not emulate it refuses (exit 2), rather than preview a different configuration than the CLI would:
- stack file: `config` is read; `secretsprovider`, `encryptedkey`, `encryptionsalt` only serve decryption, which
  never happens here, and are ignored; `environment` (Pulumi ESC imports, which can set config values) and any
  key we do not know are refused.
- project file: `stackConfigDir` is honoured; `main` (another entry point than `__main__.py`) is refused; the
  rest (runtime, description, backend, options, plugins, packages, ...) does not change config values.

Both files are read as the CLI's YAML reader (go-yaml v3) reads them: a duplicate key is an error, not
last-one-wins, and aliases may not blow a small file up into a huge document ("excessive aliasing"). A YAML null
reaches the program as "" (go-yaml decodes null into a string as its zero value).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from task_service.untrusted import InputError, clip, quote, read_text

SECURE_PLACEHOLDER = "[secret: cannot decrypt without the Pulumi CLI]"
MAX_YAML_NODES = 10_000
"""A stack file has a few hundred nodes; more, once aliases are expanded, is a YAML bomb."""
NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}", re.ASCII)
"""Project and stack names as Pulumi allows them (no path separators: the stack name is part of a file name)."""
KEY = re.compile(r"[^:\s]+:[^:\s]+", re.ASCII)
_MERGE_TAG = "tag:yaml.org,2002:merge"
BLINDED = "[secret]"
_DECLARATION_KEYS = {"type", "default", "description", "secret", "items", "value"}
_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "boolean": (bool,), "array": (list,)}
# Stack-file keys that only concern decrypting `secure:` values, which the hermetic preview never does.
_SECRETS_KEYS = {"secretsprovider", "encryptedkey", "encryptionsalt"}
_REFUSED_STACK_KEYS = {
    "environment": "imports Pulumi ESC environments, which can set config values the hermetic preview cannot resolve",
}


class StackFileError(InputError):
    """A missing or malformed project/stack file, or a value that breaks a declared type."""


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader refusing what go-yaml v3 refuses: duplicate keys and excessive aliasing."""

    def construct_document(self, node: Node) -> Any:
        if _expanded_size(node, {}) > MAX_YAML_NODES:
            raise yaml.constructor.ConstructorError(
                None, None, f"aliases expand it beyond {MAX_YAML_NODES} nodes (a YAML bomb?)", node.start_mark)
        return super().construct_document(node)

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # unhashable: SafeLoader's own error follows
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {quote(key)} (the Pulumi CLI refuses it too)", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _expanded_size(node: Node, sizes: dict[int, int]) -> int:
    """Nodes in the document once every alias is replaced by what it names (a node that contains itself counts as
    too many); stops counting past the limit."""
    if id(node) in sizes:
        return sizes[id(node)]
    sizes[id(node)] = MAX_YAML_NODES + 1
    size = 1
    if isinstance(node, SequenceNode):
        children = list(node.value)
    elif isinstance(node, MappingNode):
        children = [part for pair in node.value for part in pair]
    else:
        children = []
    for child in children:
        size += _expanded_size(child, sizes)
        if size > MAX_YAML_NODES:
            break
    sizes[id(node)] = size
    return size


@dataclass
class StackSettings:
    project: str
    config: dict[str, Any]
    secret_keys: set[str] = field(default_factory=set)

    def engine_config(self) -> dict[str, str]:
        """The config map as the engine passes it to a program (PULUMI_CONFIG): text, JSON for structures."""
        return {key: _as_text(value) for key, value in self.config.items()}

    def prelude_config(self) -> dict[str, str]:
        """The config as `pulumi preview --json` prints it (the engine's prelude event): secrets blinded."""
        return {key: BLINDED if key in self.secret_keys else text for key, text in sorted(self.engine_config().items())}


def _as_text(value: Any) -> str:
    """As the CLI marshals a config value: strings as they are, null as "" (go-yaml decodes null into a string as its
    zero value), anything else as compact JSON, keys sorted."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def read_yaml(path: Path) -> Any:
    """One YAML document, read strictly (see the module docstring); StackFileError names the file and the line."""
    if not path.is_file():
        raise StackFileError(f"{path.name} not found in {path.parent} (expected a Pulumi project/stack file)")
    text = read_text(path, path.name)
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except RecursionError:
        raise StackFileError(f"{path.name} nests too deeply to be read") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = clip(str(getattr(exc, "problem", None) or exc), 160)
        raise StackFileError(f"{path.name} is not valid YAML{where}: {problem}") from None


def _map(value: Any, what: str) -> dict[str, Any]:
    """A map with text keys (null counts as empty, as the CLI reads it)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise StackFileError(f"{what} must be a map with text keys (got {quote(value)})")
    return value


def _secure(value: Any, key: str, where: str) -> tuple[Any, bool]:
    """`value` with every `{secure: ...}` (at any depth, as the CLI allows) replaced by the placeholder; True when
    there was one, which makes the whole key secret."""
    if isinstance(value, dict) and set(value) == {"secure"}:
        if not isinstance(value["secure"], str):
            raise StackFileError(f"{key}: 'secure' must hold the encrypted text (got {quote(value['secure'])}) in {where}")
        return SECURE_PLACEHOLDER, True
    if isinstance(value, dict):
        pairs = {k: _secure(v, key, where) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_secure(v, key, where) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def _full_key(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    """`pulumi config set --path ns:key.a.b value`: set a nested setting, creating maps on the way; a value of None
    is `pulumi config rm --path` (the key is left out, which is how a setting is unset)."""
    key, _, path = dotted.partition(".")
    node, parts = config, [key, *path.split(".")] if path else [key]
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


def load_stack(project_dir: Path, stack: str) -> StackSettings:
    """Project + stack config merged with the CLI's precedence: stack value, project value, declared default."""
    if not NAME.fullmatch(stack):
        raise StackFileError(f"stack name {quote(stack)} must be 1-100 letters, digits, '-', '_' or '.'")
    project_file = project_dir / "Pulumi.yaml"
    project_doc = _map(read_yaml(project_file), "Pulumi.yaml")
    project = project_doc.get("name")
    if not isinstance(project, str) or not NAME.fullmatch(project):
        raise StackFileError(f"Pulumi.yaml must set 'name' to the project name: letters, digits, '-', '_' or '.' (got {quote(project)})")
    main = project_doc.get("main")
    if main not in (None, "", ".", "./"):
        raise StackFileError(
            f"Pulumi.yaml: 'main: {clip(str(main), 80)}' is not emulated (the hermetic preview runs __main__.py in {project_dir});"
            " remove it or use `pulumi preview`"
        )
    config_dir = project_doc.get("stackConfigDir") or "."
    if not isinstance(config_dir, str):
        raise StackFileError("Pulumi.yaml: 'stackConfigDir' must be a directory path relative to the project")

    stack_file = project_dir / config_dir / f"Pulumi.{stack}.yaml"
    stack_doc = _map(read_yaml(stack_file), stack_file.name)
    for key in stack_doc:
        if key in _REFUSED_STACK_KEYS:
            raise StackFileError(
                f"{stack_file.name}: '{key}' {_REFUSED_STACK_KEYS[key]}; remove it or use `pulumi preview`"
            )
        if key != "config" and key not in _SECRETS_KEYS:
            raise StackFileError(
                f"{stack_file.name}: unknown top-level key {quote(key)} (the hermetic preview knows config,"
                f" {', '.join(sorted(_SECRETS_KEYS))} and refuses environment)"
            )
    stack_config = _map(stack_doc.get("config"), f"{stack_file.name}: 'config'")

    config: dict[str, Any] = {}
    secret_keys: set[str] = set()
    declared: dict[str, dict[str, Any]] = {}
    for key, entry in _map(project_doc.get("config"), "Pulumi.yaml: 'config'").items():
        full = _full_key(project, key)
        if isinstance(entry, dict) and entry and set(entry) <= _DECLARATION_KEYS:
            if "type" in entry:
                if entry["type"] not in _TYPES:
                    raise StackFileError(
                        f"Pulumi.yaml: config {quote(key)} declares type {quote(entry['type'])}; expected one of"
                        f" {', '.join(_TYPES)}")
                declared[full] = entry
            if "value" in entry:
                config[full] = entry["value"]
            elif "default" in entry:
                config[full] = entry["default"]
            if entry.get("secret"):
                secret_keys.add(full)
        else:
            config[full] = entry

    for key, given in stack_config.items():
        full = _full_key(project, key)
        if not KEY.fullmatch(full):
            raise StackFileError(f"{stack_file.name}: config key {quote(key)} must be namespace:name (e.g. aws:region)")
        value, secret = _secure(given, full, stack_file.name)
        if secret:
            secret_keys.add(full)
        decl = declared.get(full)
        if decl is not None and not secret:
            expected = _TYPES[decl["type"]]
            if not isinstance(value, expected) or (decl["type"] == "integer" and isinstance(value, bool)):
                raise StackFileError(
                    f"{full} must be of type {decl['type']} as declared in Pulumi.yaml (got {quote(value)}) in {stack_file.name}"
                )
        config[full] = value

    return StackSettings(project=project, config=config, secret_keys=secret_keys)
