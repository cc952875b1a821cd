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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SECURE_PLACEHOLDER = "[secret: cannot decrypt without the Pulumi CLI]"
BLINDED = "[secret]"
_DECLARATION_KEYS = {"type", "default", "description", "secret", "items", "value"}
_TYPES: dict[str, tuple[type, ...]] = {"string": (str,), "integer": (int,), "boolean": (bool,), "array": (list,)}
# Stack-file keys that only concern decrypting `secure:` values, which the hermetic preview never does.
_SECRETS_KEYS = {"secretsprovider", "encryptedkey", "encryptionsalt"}
_REFUSED_STACK_KEYS = {
    "environment": "imports Pulumi ESC environments, which can set config values the hermetic preview cannot resolve",
}


class StackFileError(Exception):
    """A missing or malformed project/stack file, or a value that breaks a declared type."""


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
    """As the CLI marshals a config value: strings as they are, anything else as compact JSON, keys sorted."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _read_yaml(path: Path) -> Any:
    if not path.is_file():
        raise StackFileError(f"{path.name} not found in {path.parent} (expected a Pulumi project/stack file)")
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise StackFileError(f"{path.name} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None


def _full_key(project: str, key: str) -> str:
    return key if ":" in key else f"{project}:{key}"


def set_path(config: dict[str, Any], dotted: str, value: Any) -> None:
    """`pulumi config set --path ns:key.a.b value`: set a nested setting, creating maps on the way."""
    key, _, path = dotted.partition(".")
    if not path:
        config[key] = value
        return
    node = config.setdefault(key, {})
    parts = path.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def load_stack(project_dir: Path, stack: str) -> StackSettings:
    """Project + stack config merged with the CLI's precedence: stack value, project value, declared default."""
    project_file = project_dir / "Pulumi.yaml"
    project_doc = _read_yaml(project_file)
    if not isinstance(project_doc, dict) or not isinstance(project_doc.get("name"), str):
        raise StackFileError(f"Pulumi.yaml must be a map with a 'name' (the project name)")
    project = project_doc["name"]
    main = project_doc.get("main")
    if main not in (None, "", ".", "./"):
        raise StackFileError(
            f"Pulumi.yaml: 'main: {main}' is not emulated (the hermetic preview runs __main__.py in {project_dir});"
            " remove it or use `pulumi preview`"
        )
    config_dir = project_doc.get("stackConfigDir") or "."
    if not isinstance(config_dir, str):
        raise StackFileError("Pulumi.yaml: 'stackConfigDir' must be a directory path relative to the project")

    stack_file = project_dir / config_dir / f"Pulumi.{stack}.yaml"
    stack_doc = _read_yaml(stack_file)
    if not isinstance(stack_doc, dict):
        raise StackFileError(f"{stack_file.name} must be a map with a 'config' section")
    for key in stack_doc:
        if key in _REFUSED_STACK_KEYS:
            raise StackFileError(
                f"{stack_file.name}: '{key}' {_REFUSED_STACK_KEYS[key]}; remove it or use `pulumi preview`"
            )
        if key != "config" and key not in _SECRETS_KEYS:
            raise StackFileError(
                f"{stack_file.name}: unknown top-level key '{key}' (the hermetic preview knows config,"
                f" {', '.join(sorted(_SECRETS_KEYS))} and refuses environment)"
            )
    stack_config = stack_doc.get("config") or {}
    if not isinstance(stack_config, dict):
        raise StackFileError(f"{stack_file.name}: 'config' must be a map of keys to values")

    config: dict[str, Any] = {}
    secret_keys: set[str] = set()
    declared: dict[str, dict[str, Any]] = {}
    for key, entry in (project_doc.get("config") or {}).items():
        full = _full_key(project, key)
        if isinstance(entry, dict) and entry and set(entry) <= _DECLARATION_KEYS:
            if "type" in entry:
                declared[full] = entry
            if "value" in entry:
                config[full] = entry["value"]
            elif "default" in entry:
                config[full] = entry["default"]
            if entry.get("secret"):
                secret_keys.add(full)
        else:
            config[full] = entry

    for key, value in stack_config.items():
        full = _full_key(project, str(key))
        if isinstance(value, dict) and set(value) == {"secure"}:
            config[full] = SECURE_PLACEHOLDER
            secret_keys.add(full)
            continue
        decl = declared.get(full)
        if decl is not None:
            expected = _TYPES.get(decl["type"], (object,))
            if not isinstance(value, expected) or (decl["type"] == "integer" and isinstance(value, bool)):
                raise StackFileError(
                    f"{full} must be of type {decl['type']} as declared in Pulumi.yaml (got {value!r}) in {stack_file.name}"
                )
        config[full] = value

    return StackSettings(project=project, config=config, secret_keys=secret_keys)
