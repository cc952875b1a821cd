"""What a listener rule (or a listener's default actions) can send to the canary target group, whatever its shape.

Every action naming target groups counts, not only a two-way weighted forward: a plain `targetGroupArn`, a forward
config with one group or with several, several actions. A group is the canary when its name (from its ARN
`...:targetgroup/<name>/<hash>`) equals the rule's canary tag value *or* matches `canaryNamePattern`, so a tag
naming another group cannot hide the real canary. During a preview a group created in the same update has no ARN
yet: when no known ARN is the canary and exactly one is unknown, that one is taken as the canary (it may be the
group being created), so an unknown ARN never lets a rule through unjudged.

The one exception is a test route ordinary traffic cannot reach: a rule whose conditions require an HTTP header
named `testRouteHeaderName` (compared without case, as HTTP does) with at least one value, none of them empty or
made only of the wildcards `*` and `?` (which would match any value). Such a rule is not a canary route.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from pulumi_policy.proxy import UnknownValueError

from .common import as_list, as_number, dig, fmt_number, known_or

_TG_NAME = re.compile(r":targetgroup/([^/]+)/")
_UNKNOWN_VALUE = object()


def target_group_name(arn: Optional[str]) -> Optional[str]:
    match = _TG_NAME.search(arn or "")
    return match.group(1) if match else None


def rule_tags(props: Mapping[str, Any]) -> dict[str, Any]:
    """`tags` over `tagsAll` (the provider's default tags, present once the provider has checked the inputs)."""
    merged: dict[str, Any] = {}
    for key in ("tagsAll", "tags"):
        value = known_or(props, key)
        if isinstance(value, Mapping):
            for tag in value:
                try:
                    merged[tag] = value[tag]
                except UnknownValueError:
                    continue
    return merged


def canary_indexes(arns: Sequence[Optional[str]], tag_name: Optional[str], pattern: str) -> Optional[frozenset[int]]:
    """The indexes of the canary among `arns`; empty when none is; None when an unknown ARN leaves it open."""
    names = [target_group_name(a) for a in arns]
    known = {i for i, n in enumerate(names) if n and (n == tag_name or re.search(pattern, n))}
    if known:
        return frozenset(known)
    unknown = [i for i, a in enumerate(arns) if a is None]
    if len(unknown) == 1:
        return frozenset(unknown)
    return None if unknown else frozenset()


@dataclass(frozen=True)
class Forward:
    """The target groups one action names, in order."""

    arns: tuple[Optional[str], ...]  # None where the ARN is unknown during preview
    weights: tuple[Optional[float], ...]  # None where no weight is set
    weighted: bool  # a forward config (`forward.targetGroups`), not a plain `targetGroupArn`
    canary: Optional[frozenset[int]]
    unknown: Optional[UnknownValueError]  # kept to re-raise when an unknown ARN is what leaves the canary open

    @property
    def reaches_canary(self) -> bool:
        return bool(self.canary)

    @property
    def share(self) -> Optional[float]:
        """Percent of this action's traffic sent to the canary; None when a weight it depends on is missing."""
        if not self.canary:
            return 0.0
        if len(self.arns) == 1:
            return 100.0
        if any(w is None for w in self.weights):
            return None
        weights = [w or 0.0 for w in self.weights]
        total = sum(weights)
        return 100.0 * sum(weights[i] for i in self.canary) / total if total > 0 else 0.0

    @property
    def two_way(self) -> bool:
        """The canonical canary split: one forward config naming the monolith and the canary."""
        return self.weighted and len(self.arns) == 2 and self.canary is not None and len(self.canary) == 1

    def shape(self) -> str:
        if not self.weighted:
            return "a plain forward (targetGroupArn)"
        if len(self.arns) == 1:
            return "a forward to that one target group"
        if self.canary is not None and len(self.canary) == len(self.arns):
            return f"a forward whose {len(self.arns)} target groups all count as the canary"
        return f"a forward naming {len(self.arns)} target groups"


@dataclass(frozen=True)
class Route:
    """Everything one rule or listener can send to the canary."""

    forwards: tuple[Forward, ...]
    test_route: bool
    canary_name: Optional[str]
    tag_name: Optional[str]  # the rule's canary tag value: it claims to be the canary rule

    @property
    def reaching(self) -> list[Forward]:
        return [f for f in self.forwards if f.reaches_canary]

    @property
    def undecided(self) -> list[Forward]:
        """Splits whose canary cannot be told: several unknown ARNs and no known one is the canary, or a rule
        tagged as the canary rule whose split names no canary at all."""
        return [f for f in self.forwards if f.canary is None
                or (self.tag_name and f.weighted and len(f.arns) > 1 and not f.canary)]

    @property
    def effective(self) -> Optional[float]:
        """The canary's share of the route's traffic: the largest of its actions'; None if one is unknown."""
        shares = [f.share for f in self.reaching]
        if any(s is None for s in shares):
            return None
        return max((s for s in shares if s is not None), default=0.0)


def _arn(group: Any, key: str) -> tuple[Optional[str], Optional[UnknownValueError]]:
    try:
        value = dig(group, key)
    except UnknownValueError as err:
        return None, err
    return (value if isinstance(value, str) and value else None), None


def _forwards(action: Any, tag_name: Optional[str], pattern: str) -> list[Forward]:
    """The forward config of one action, and its plain `targetGroupArn` unless the config already names it."""
    out = []
    groups = as_list(dig(action, "forward", "targetGroups"))
    read = [_arn(group, "arn") for group in groups]
    if groups:
        arns = tuple(arn for arn, _ in read)
        unknown = next((err for _, err in read if err is not None), None)
        weights = tuple(as_number(dig(group, "weight")) for group in groups)
        out.append(Forward(arns, weights, True, canary_indexes(arns, tag_name, pattern), unknown))
    plain, unknown = _arn(action, "targetGroupArn")
    if (plain or unknown) and not (plain and plain in {arn for arn, _ in read}):
        out.append(Forward((plain,), (None,), False, canary_indexes([plain], tag_name, pattern), unknown))
    return out


def _header_values(values: Any) -> list[object]:
    out: list[object] = []
    for index in range(len(values)):
        try:
            out.append(values[index])
        except UnknownValueError:
            out.append(_UNKNOWN_VALUE)  # a value the update supplies (a generated secret): set, not empty
    return out


def _requires_value(value: object) -> bool:
    if value is _UNKNOWN_VALUE:
        return True
    return isinstance(value, str) and bool(set(value.strip()) - {"*", "?"})


def is_test_route(props: Mapping[str, Any], header_name: str) -> bool:
    """The rule can only be reached by requests carrying the test header (see the module docstring)."""
    for condition in as_list(known_or(props, "conditions")):
        header = known_or(condition, "httpHeader")
        name = known_or(header, "httpHeaderName")
        if not (isinstance(name, str) and header_name and name.lower() == header_name.lower()):
            continue
        values = known_or(header, "values")
        if not isinstance(values, Sequence) or isinstance(values, str) or len(values) == 0:
            continue
        if all(_requires_value(v) for v in _header_values(values)):
            return True
    return False


def read_route(props: Mapping[str, Any], cfg: Mapping[str, Any], actions_key: str = "actions") -> Route:
    """The rule's (`actions`) or listener's (`defaultActions`) route to the canary."""
    tag = rule_tags(props).get(cfg["canaryTagKey"])
    tag_name = tag if isinstance(tag, str) and tag else None
    pattern = cfg["canaryNamePattern"]
    forwards = tuple(f for action in as_list(props.get(actions_key)) for f in _forwards(action, tag_name, pattern))
    name = tag_name
    if name is None:
        known = [target_group_name(f.arns[i]) for f in forwards for i in sorted(f.canary or ()) if f.arns[i]]
        name = next((n for n in known if n), None)
    header = cfg.get("testRouteHeaderName") or ""
    return Route(forwards, actions_key == "actions" and is_test_route(props, header), name, tag_name)


def describe_share(share: Optional[float]) -> str:
    return "an unknown share" if share is None else f"{fmt_number(round(share, 2))}%"
