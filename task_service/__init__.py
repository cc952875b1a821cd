"""The Task Service's domain: the migrated tables, the canary steps, physical names and the stack-output contract.

The program (`__main__.py`, `stack_config.py`, `components/`), the runbook and the preview import this package;
it imports none of them, nor Pulumi or boto3, so every side agrees on one definition. The policy pack stays
self-contained (only `policy/` is published) and learns the same values through `policy/config/*.json`, which a
test checks against this package.
"""
