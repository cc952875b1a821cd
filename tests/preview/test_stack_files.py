"""Stack files: what the hermetic preview does not emulate is refused with one line, never silently ignored."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from preview.stack_files import SECURE_PLACEHOLDER, StackFileError, load_stack

ROOT = Path(__file__).resolve().parents[2]
PROD = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())


def _project(tmp_path: Path, stack_doc: dict, project_extra: dict | None = None, stack_dir: str = ".") -> Path:
    project_doc = yaml.safe_load((ROOT / "Pulumi.yaml").read_text()) | (project_extra or {})
    (tmp_path / "Pulumi.yaml").write_text(yaml.safe_dump(project_doc))
    (tmp_path / stack_dir).mkdir(exist_ok=True)
    (tmp_path / stack_dir / "Pulumi.prod.yaml").write_text(yaml.safe_dump(stack_doc))
    return tmp_path


def test_secrets_provider_keys_are_accepted_and_do_not_touch_config(tmp_path: Path) -> None:
    doc = PROD | {
        "secretsprovider": "awskms://alias/pulumi?region=ap-northeast-1",
        "encryptedkey": "AQICAHh...",
        "encryptionsalt": "v1:abc:def",
    }
    doc["config"] = doc["config"] | {"task-service:apiToken": {"secure": "v1:AAAA"}}
    settings = load_stack(_project(tmp_path, doc), "prod")
    assert settings.config == load_stack(ROOT, "prod").config | {"task-service:apiToken": SECURE_PLACEHOLDER}
    assert "task-service:apiToken" in settings.secret_keys


@pytest.mark.parametrize(
    "environment", [["myteacher/prod"], {"imports": ["myteacher/prod"]}, "myteacher/prod"], ids=["list", "imports", "string"]
)
def test_an_esc_environment_is_refused(tmp_path: Path, environment: object) -> None:
    with pytest.raises(StackFileError) as err:
        load_stack(_project(tmp_path, PROD | {"environment": environment}), "prod")
    assert str(err.value) == (
        "Pulumi.prod.yaml: 'environment' imports Pulumi ESC environments, which can set config values the hermetic"
        " preview cannot resolve; remove it or use `pulumi preview`"
    )


def test_an_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match=r"^Pulumi.prod.yaml: unknown top-level key 'conifg' \(the hermetic"):
        load_stack(_project(tmp_path, {"conifg": PROD["config"]}), "prod")


def test_stack_config_dir_is_honoured(tmp_path: Path) -> None:
    project = _project(tmp_path, PROD, {"stackConfigDir": "stacks"}, stack_dir="stacks")
    (project / "Pulumi.prod.yaml").write_text(yaml.safe_dump({"config": {"task-service:canaryWeight": 5}}))  # not read
    assert load_stack(project, "prod").config == load_stack(ROOT, "prod").config


def test_another_entry_point_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StackFileError, match=r"^Pulumi.yaml: 'main: src/' is not emulated"):
        load_stack(_project(tmp_path, PROD, {"main": "src/"}), "prod")
    assert load_stack(_project(tmp_path, PROD, {"main": "."}), "prod").config  # the project directory itself is fine


def test_the_cli_exits_2_with_one_line(tmp_path: Path) -> None:
    project = _project(tmp_path, PROD | {"environment": ["myteacher/prod"]})
    result = subprocess.run(
        [sys.executable, "-m", "preview", "-C", str(project), "-s", "prod", "--no-policy"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "error: Pulumi.prod.yaml: 'environment' imports Pulumi ESC environments, which can set config values the"
        " hermetic preview cannot resolve; remove it or use `pulumi preview`"
    ]
