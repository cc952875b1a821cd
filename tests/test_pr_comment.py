"""The pull-request comment: the workflow's own scripts, run with bash against a stand-in `gh` that answers the
comment listing through real jq, create one marked comment and then only ever update it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
JOBS = yaml.safe_load((ROOT / ".github" / "workflows" / "pull-request.yml").read_text())["jobs"]
MARKER = "<!-- task-service-preview-summary -->"
FAKE_GH = f"""#!{sys.executable}
import json, os, subprocess, sys
args = sys.argv[1:]
assert os.environ.get("GH_TOKEN"), "gh needs GH_TOKEN"
with open(os.environ["GH_LOG"], "a") as log:
    if "--method" in args:
        at = args.index("--method")
        field = args[args.index("-F") + 1]
        assert field.startswith("body=@")
        log.write(json.dumps({{"method": args[at + 1], "path": args[at + 2], "body": open(field[6:]).read()}}) + "\\n")
        print("{{}}")
    else:
        assert args[:2] == ["api", "--paginate"]
        log.write(json.dumps({{"method": "GET", "path": args[2]}}) + "\\n")
        listing = open(os.environ["GH_COMMENTS"]).read()
        done = subprocess.run(["jq", "-r", args[args.index("--jq") + 1]], input=listing, capture_output=True, text=True, check=True)
        sys.stdout.write(done.stdout)
"""

pytestmark = pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed (GitHub's runners have it)")


def _step(job: str, name_starts: str) -> dict[str, Any]:
    (step,) = [s for s in JOBS[job]["steps"] if s.get("name", "").startswith(name_starts)]
    return step


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """As a `run:` step runs: bash -e with pipefail (GitHub's default shell)."""
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


@pytest.fixture
def runner(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "bin").mkdir()
    gh = tmp_path / "bin" / "gh"
    gh.write_text(FAKE_GH)
    gh.chmod(0o755)
    env = os.environ | {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "GH_LOG": str(tmp_path / "gh.log"),
        "GH_COMMENTS": str(tmp_path / "comments.json"),
        "GH_TOKEN": "token",
        "REPO": "acme/task-service-infra",
        "PR": "7",
        "SHA": "0123456789abcdef0123",
        "RUN_URL": "https://github.com/acme/task-service-infra/actions/runs/1",
        "REAL_PREVIEW": "skipped",
    }
    (tmp_path / "pr-comment").mkdir()
    return {"dir": tmp_path, "env": env}


def _comment(runner: dict[str, Any], comments: list[dict[str, Any]]) -> list[dict[str, str]]:
    (runner["dir"] / "comments.json").write_text(json.dumps(comments))
    done = _bash(_step("pr-comment", "Create or update")["run"], runner["dir"], runner["env"])
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in (runner["dir"] / "gh.log").read_text().splitlines()]


def test_the_first_run_posts_one_comment_with_both_parts(runner: dict[str, Any]) -> None:
    (runner["dir"] / "pr-comment" / "hermetic-prod.md").write_text("### Hermetic preview of `task-service/prod`\n\n✅ exit 0.\n")
    (runner["dir"] / "pr-comment" / "pulumi-preview.md").write_text("### `pulumi preview` of prod with the policy pack: success\n")
    calls = _comment(runner, [{"id": 3, "user": {"login": "alice"}, "body": "looks good"}])
    assert [(c["method"], c["path"]) for c in calls] == [
        ("GET", "repos/acme/task-service-infra/issues/7/comments"),
        ("POST", "repos/acme/task-service-infra/issues/7/comments"),
    ]
    body = calls[1]["body"]
    assert body.startswith(MARKER + "\n### Hermetic preview of `task-service/prod`")
    assert body.index("Hermetic preview") < body.index("`pulumi preview` of prod with the policy pack: success")
    assert "For 0123456789ab, [run](https://github.com/acme/task-service-infra/actions/runs/1)" in body


def test_later_runs_update_the_bots_marked_comment_only(runner: dict[str, Any]) -> None:
    comments = [
        {"id": 41, "user": {"login": "mallory"}, "body": MARKER + " a person's comment that looks like ours"},
        {"id": 42, "user": {"login": "github-actions[bot]"}, "body": MARKER + "\nold summary"},
        {"id": 43, "user": {"login": "github-actions[bot]"}, "body": "another bot comment"},
    ]
    calls = _comment(runner, comments)
    assert [(c["method"], c["path"]) for c in calls][1:] == [("PATCH", "repos/acme/task-service-infra/issues/comments/42")]
    body = calls[1]["body"]
    assert "### Hermetic preview of prod: no summary (see the run)" in body  # the artifact was missing
    assert "`pulumi preview` of prod: skipped (it runs when AWS_PREVIEW_ROLE_ARN is set and the tests pass)" in body


def test_the_real_previews_output_is_escaped_and_kept_short(runner: dict[str, Any]) -> None:
    step = _step("pulumi-preview", "The preview's output")
    output = "Previewing update (prod)\n" + "x" * 50_000 + "\n<script>alert(1)</script> & done\nResources: 92 to create\n"
    done = _bash(step["run"], runner["dir"], runner["env"] | {"OUTCOME": "failure", "OUTPUT": output})
    assert done.returncode == 0, done.stderr
    text = (runner["dir"] / "pulumi-preview.md").read_text()
    assert text.startswith("### `pulumi preview` of prod with the policy pack: failure\n")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; done" in text and "<script>" not in text
    assert "Resources: 92 to create" in text and "Previewing update" not in text  # the end is kept
    assert len(text) < 41_000


def test_a_hermetic_preview_that_stopped_early_still_says_so(runner: dict[str, Any]) -> None:
    step = _step("hermetic-preview", "The prod summary")
    done = _bash(step["run"], runner["dir"], runner["env"])
    assert done.returncode == 0, done.stderr
    assert "stopped before writing a summary" in (runner["dir"] / "hermetic-prod.md").read_text()
