"""Operations tooling for the Task Service migration, driven by the stack's outputs.

Operators never copy ARNs by hand: every command reads the outputs of `pulumi stack output`
(or a file in that shape) and either renders the procedure or acts on AWS with boto3.
"""
