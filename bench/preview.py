"""Benchmark the hermetic preview: prod wall time, and how it grows with the number of services.

    .venv/bin/python bench/preview.py [--runs 5]

1. `python -m preview -s prod` as a user runs it (fresh process each time): median of the program run, the policy
   pack (Configure + Analyze + AnalyzeStack, once it is up) and the whole command.
2. A synthetic program with N = 1, 10, 50 copies of FargateService + AlbRoute (the same components, prod config),
   run in one process: median program time and policy time per N, and the marginal cost of one more service.
Goals (issue 4): prod preview under 2 s on this 2-core machine; marginal cost linear and under 50 ms a service.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from preview.analyzer_client import PolicyPackServer  # noqa: E402
from preview.analyzer_requests import resources_from_recording  # noqa: E402
from preview.engine import run_program  # noqa: E402

SYNTHETIC = '''
import pulumi_aws as aws
import stack_config
from components import AlbRoute, AlbRouteArgs, FargateService, FargateServiceArgs, RouteSettings
from task_service.naming import Naming

cfg = stack_config.load()
topic = "arn:aws:sns:ap-northeast-1:123456789012:t"
key = "arn:aws:kms:ap-northeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
secret = aws.secretsmanager.Secret("app-secret", name="app")
version = aws.secretsmanager.SecretVersion("app-secret-version", secret_id=secret.id, secret_string="{{}}")
for i in range({n}):
    naming = Naming(f"svc{{i}}")
    route = AlbRoute(f"route{{i}}", AlbRouteArgs(
        settings=RouteSettings(priority=100 + i), naming=naming, vpc_id=cfg.network.vpc_id,
        listener_arn=cfg.monolith.listener_arn, monolith_target_group_arn=cfg.monolith.target_group_arn,
        canary_weight=0, alarm_topic_arn=topic))
    FargateService(f"svc{{i}}", FargateServiceArgs(
        service=cfg.service, autoscaling=cfg.autoscaling, cognito=cfg.cognito, naming=naming, region=cfg.region,
        cluster_arn=f"arn:aws:ecs:ap-northeast-1:123456789012:cluster/svc{{i}}", cluster_name=f"svc{{i}}",
        vpc_id=cfg.network.vpc_id, subnet_ids=cfg.network.service_subnet_ids,
        alb_security_group_id=cfg.monolith.alb_security_group_id, target_group_arn=route.target_group.arn,
        listener_rule=route.listener_rule, db_host="db.example.internal", db_port=5432, db_name="task_service",
        app_db_secret_arn=secret.arn, app_db_secret_version=version, secrets_kms_key_arn=key, logs_kms_key_arn=key,
        log_retention_days=365, recovery_window_days=30, alarm_topic_arn=topic))
'''


def cli_runs(runs: int) -> None:
    program, policy, total, wall = [], [], [], []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "preview", "-s", "prod"], cwd=ROOT, capture_output=True, text=True, check=False
        )
        wall.append(time.perf_counter() - started)
        if proc.returncode != 0:
            sys.exit(f"preview failed ({proc.returncode}): {proc.stderr.strip()}")
        # the report's last line: "Duration: program 1.06s, policy 0.31s, total 1.85s"
        timings = {k: float(v.rstrip("s")) for k, v in (part.split() for part in proc.stdout.rsplit("Duration: ", 1)[1].split(", "))}
        program.append(timings["program"])
        policy.append(timings["policy"])
        total.append(timings["total"])
    print(f"prod preview, {runs} fresh processes (median):")
    print(f"  program run (incl. importing pulumi_aws) {statistics.median(program):6.3f} s")
    print(f"  policy pack, once up                     {statistics.median(policy):6.3f} s")
    print(f"  preview total (pack boots in parallel)   {statistics.median(total):6.3f} s")
    print(f"  whole command, interpreter start to exit {statistics.median(wall):6.3f} s   goal < 2 s")


def synthetic(ns: list[int], runs: int) -> None:
    medians: dict[int, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp)
        for name in ("Pulumi.yaml", "Pulumi.prod.yaml", "stack_config.py", "components", "stack-references"):
            (project / name).symlink_to(ROOT / name)
        run_program(ROOT, "prod")  # warm imports so N=1 is not charged for them
        with PolicyPackServer(ROOT / "policy", project="task-service", stack="prod") as pack:
            pack.configure(ROOT / "policy" / "config" / "prod.json")
            for n in ns:
                (project / "__main__.py").write_text(SYNTHETIC.format(n=n))
                program_times, policy_times = [], []
                count = 0
                for _ in range(runs):
                    started = time.perf_counter()
                    rec = run_program(project, "prod")
                    program_times.append(time.perf_counter() - started)
                    resources = resources_from_recording(rec.resources, project="task-service", stack="prod")
                    started = time.perf_counter()
                    pack.preview(resources)
                    policy_times.append(time.perf_counter() - started)
                    count = len(rec.resources)
                medians[n] = (statistics.median(program_times), statistics.median(policy_times))
                print(f"  N={n:>3}: {count:>5} resources  program {medians[n][0]:6.3f} s  policy {medians[n][1]:6.3f} s")
    lo, hi = min(ns), max(ns)
    per_service = [(medians[hi][i] - medians[lo][i]) / (hi - lo) * 1000 for i in (0, 1)]
    mid = sorted(ns)[len(ns) // 2]
    linear_estimate = medians[lo][0] + (medians[hi][0] - medians[lo][0]) * (mid - lo) / (hi - lo)
    print(f"  marginal cost per service: program {per_service[0]:.1f} ms, policy {per_service[1]:.1f} ms, "
          f"total {sum(per_service):.1f} ms   goal < 50 ms")
    print(f"  linearity: N={mid} measured {medians[mid][0]:.3f} s vs {linear_estimate:.3f} s on the N={lo}..{hi} line")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    cli_runs(args.runs)
    print("synthetic program, FargateService + AlbRoute per service (median, one process):")
    synthetic([1, 10, 50], max(3, args.runs // 2))


if __name__ == "__main__":
    main()
