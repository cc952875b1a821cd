"""Percentiles for moto's CloudWatch, which computes none: a GetMetricData query with `Stat: p95` makes its
server answer HTTP 500. CloudWatch computes a percentile from the raw values of the period; this teaches the
moto server the tests start in this process the same from the raw values a test put (nearest rank), and nothing
else. The gate's reading of real, approximate CloudWatch percentiles is covered by recorded-shape responses
(tests/policy/test_health_gate_unit.py); what moto cannot show is listed in the README.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional, SupportsFloat

import pytest
from moto.cloudwatch.models import Statistics

_PERCENTILE = re.compile(r"p(\d{1,2}(?:\.\d+)?)")


def nearest_rank(values: list[float], percent: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(percent / 100.0 * len(ordered)) - 1, 0)]


@contextmanager
def taught() -> Iterator[None]:
    original = Statistics.get_statistics_for_type

    def get_statistics_for_type(self: Any, stat: str) -> Optional[SupportsFloat]:
        match = _PERCENTILE.fullmatch(stat)
        if match:
            return nearest_rank(self.metric_single_values_list, float(match.group(1)))
        return original(self, stat)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Statistics, "get_statistics_for_type", get_statistics_for_type)
        yield
