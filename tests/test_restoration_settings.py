"""Chapter 07's per-task GDP settings are the ones benchmarks/restoration.py --tune chose on validation images."""
from __future__ import annotations

import json

from ddlearn import pretrained
from ddlearn.restoration import tasks

RESULTS = pretrained.HERE / "restoration_results.json"


def test_settings_are_the_stored_validation_choices():
    results = json.loads(RESULTS.read_text())
    tuned = {key: r for key, r in results.items() if key.startswith("tune:")}
    assert tuned, "no tuning results stored"
    for key, r in tuned.items():
        _, prior, task, method = key.split(":")
        if prior != tasks.TUNE_PRIOR.get(task, "gray"):
            continue
        assert tasks.settings(task, method) == r["chosen"], key
        best = max((row for row in r["rows"] if all(v == v for v in row["psnr"])),
                   key=lambda row: sum(row["psnr"]) / len(row["psnr"]))
        assert best["options"] == r["chosen"], f"{key}: the stored choice is not the best row"
        assert r["split"].startswith("val"), f"{key} was tuned on {r['split']}"
    for task, per in tasks.SETTINGS.items():
        for method in per:
            assert f"tune:{tasks.TUNE_PRIOR.get(task, 'gray')}:{task}:{method}" in tuned, (task, method)
