"""What the recorder captures is what the engine receives: URNs, camelCase keys, secret and unknown sentinels."""

from __future__ import annotations

import re

from google.protobuf import struct_pb2

from preview.engine import Recording
from preview.wire import SECRET_SIGNATURE, SIGNATURE_KEY, UNKNOWN

CAMEL = re.compile(r"^[a-z][A-Za-z0-9]*$")


def test_urns_follow_the_engine(prod: Recording) -> None:
    db = prod.one("aws:rds/instance:Instance")
    assert db.urn == "urn:pulumi:prod::task-service::task-service:database:TaskServiceDb$aws:rds/instance:Instance::task-service-db-instance"
    component = prod.one("task-service:database:TaskServiceDb")
    assert component.urn == "urn:pulumi:prod::task-service::task-service:database:TaskServiceDb::task-service-db"
    assert db.parent == component.urn and component.parent == prod.stack_urn == "urn:pulumi:prod::task-service::pulumi:pulumi:Stack::task-service-prod"


def test_property_keys_are_camel_case(prod: Recording) -> None:
    for resource in prod.resources:
        for key in resource.inputs:
            assert CAMEL.match(key), (resource.type, key)
    rule = prod.one("aws:lb/listenerRule:ListenerRule").inputs
    assert set(rule["actions"][0]["forward"]) == {"targetGroups", "stickiness"}


def test_secrets_are_wrapped_and_unknowns_are_the_sentinel(prod: Recording) -> None:
    db = prod.one("aws:rds/instance:Instance")
    password = db.inputs_struct.fields["password"]
    assert password.WhichOneof("kind") == "struct_value"
    assert password.struct_value.fields[SIGNATURE_KEY].string_value == SECRET_SIGNATURE
    # the generated password is unknown in a preview, and still secret
    assert password.struct_value.fields["value"].string_value == UNKNOWN
    kms = db.inputs_struct.fields["kmsKeyId"]
    assert kms.string_value == UNKNOWN
    assert isinstance(db.inputs_struct.fields["allocatedStorage"], struct_pb2.Value)
    assert db.inputs_struct.fields["allocatedStorage"].number_value == 100.0


def test_dependencies_are_recorded_per_property(prod: Recording) -> None:
    db = prod.one("aws:rds/instance:Instance")
    assert db.property_dependencies["kmsKeyId"] == ["urn:pulumi:prod::task-service::task-service:database:TaskServiceDb$aws:kms/key:Key::task-service-db-key"]
    assert db.property_dependencies["engine"] == []
    assert "urn:pulumi:prod::task-service::task-service:database:TaskServiceDb$aws:kms/key:Key::task-service-db-key" in db.dependencies
