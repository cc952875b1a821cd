"""The task-service CrossGuard policies.

Deliberately empty: importing a module of this package (`task_service_policies.health_gate`, which the runbook
shares) runs nothing else. The policies are built in `task_service_policies.pack`, which the engine's entry point
imports; `serve()` there starts the pack.
"""
