"""ImageRepository: the ECR repository CI pushes the Task Service image to.

Creates, parented to the component and named `<name>-...`:
- the repository (`task-service` in prod): scan on push, AES256 (the seeds' choice), immutable tags;
- a lifecycle policy: untagged images expire after 7 days, the 30 newest images stay (rollback targets).
It lives apart from the service, as awsx splits them: the repository must exist (and hold an image) before a
service can run the image, and it outlives any one service revision.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping

import pulumi
import pulumi_aws as aws

from task_service.naming import Naming, Role

# Until the split these were children of FargateService `task-service`; the aliases keep their URNs, so a stack
# that already has them moves them instead of replacing (and losing the images of) the repository.
_FORMER_PARENT = ("task-service", "task-service:fargate:FargateService")

LIFECYCLE_RULES = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "expire untagged images after 7 days",
            "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
            "action": {"type": "expire"},
        },
        {
            "rulePriority": 2,
            "description": "keep the 30 newest images (rollback targets)",
            "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30},
            "action": {"type": "expire"},
        },
    ]
}


@dataclass
class ImageRepositoryArgs:
    """Inputs of ImageRepository."""

    naming: Naming
    tags: Mapping[str, str] = field(default_factory=dict)


class ImageRepository(pulumi.ComponentResource):
    """ECR repository with scanning, immutable tags and a lifecycle policy."""

    repository: aws.ecr.Repository

    def __init__(self, name: str, args: ImageRepositoryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("task-service:ecr:ImageRepository", name, None, opts)
        former_parent = pulumi.resource.create_urn(*_FORMER_PARENT)
        self.repository = aws.ecr.Repository(
            f"{name}-repo",
            name=args.naming.of(Role.ECR_REPOSITORY),
            image_tag_mutability="IMMUTABLE",
            image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
            encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")],
            tags=dict(args.tags),
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name="task-service-repo", parent=former_parent)]),
        )
        aws.ecr.LifecyclePolicy(
            f"{name}-lifecycle",
            repository=self.repository.name,
            policy=json.dumps(LIFECYCLE_RULES),
            opts=pulumi.ResourceOptions(
                parent=self, aliases=[pulumi.Alias(name="task-service-repo-lifecycle", parent=former_parent)]
            ),
        )
        self.register_outputs({"repositoryUrl": self.repository.repository_url, "name": self.repository.name})
