"""Entry point the engine runs (`python -m pulumi.policy <engine> .` from this directory).

Nothing else belongs here: the policies and the pack live in `task_service_policies.pack`, where tests import them
and mypy checks them (a second top-level `__main__` beside the program's cannot be checked in the same run).
"""

from task_service_policies.pack import serve

serve()
