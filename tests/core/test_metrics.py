"""core.metrics with several worker processes (PROMETHEUS_MULTIPROC_DIR)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families


def value(samples: dict, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


WORKER = """
import os, sys
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway.settings")
from core import metrics
fields = {"endpoint": "chat", "provider": "p", "upstream_model": "m", "status": 200, "cached": False,
          "latency_ms": 12, "input_tokens": 3, "output_tokens": 4, "cost_usd": 0.5}
metrics.observe(fields, 0.01)
"""


def test_values_of_several_processes_are_added_up(tmp_path: Path):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    root = Path(__file__).resolve().parents[2]
    for _ in range(2):  # two "workers", each its own process
        subprocess.run([sys.executable, "-c", WORKER], env=env, cwd=root, check=True, timeout=60)
    reader = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'gateway.settings'); django.setup()\n"
        "from unittest import mock\nfrom core import metrics\nfrom providers.circuit import CircuitCollector\n"
        "with mock.patch.object(CircuitCollector, 'collect', return_value=iter(())):\n"
        "    print(metrics.exposition()[0].decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", reader], env=env, cwd=root, check=True, timeout=60, capture_output=True, text=True
    ).stdout
    samples = {}
    for family in text_string_to_metric_families(out):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    labels = {"endpoint": "chat", "provider": "p", "model": "m", "status": "200", "cached": "false"}
    assert value(samples, "llm_gateway_requests_total", **labels) == 2
    assert value(samples, "llm_gateway_tokens_total", provider="p", model="m", type="output") == 8
    assert value(samples, "llm_gateway_cost_usd_total", provider="p", model="m") == pytest.approx(1.0)
