"""Chapter 09's defaults are the best rows of their stored validation searches.

``python benchmarks/medical.py --tune`` measures each grid on validation phantoms and stores every row in
``ddlearn/pretrained/medical_results.json`` ("tune:ct", "tune:ct_noisy", "tune:dps", "tune:mri",
"tune:anomaly"). A default edited by hand, or a search re-run with a different winner, fails here until the
two agree again. The test split's entries ("ct:test:...", ...) are checked for the shape the chapter reads.
"""
from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest

from ddlearn import pretrained
from ddlearn.restoration import anomaly, consistency

RESULTS = json.loads((pretrained.HERE / "medical_results.json").read_text())


def best(rows, keys, score):
    """The setting (values of ``keys``) with the highest ``score`` averaged over the rows that share it."""
    groups = defaultdict(list)
    for r in rows:
        groups[tuple(r.get(k) for k in keys)].append(r[score])
    return max(groups, key=lambda g: np.mean(groups[g]))


@pytest.mark.parametrize("part, setting, keys", [
    ("ct", consistency.CT, ("eta",)),
    ("ct_noisy", consistency.CT_NOISY, ("damping", "eta", "weight")),
    ("mri", consistency.MRI, ("eta",)),
    ("dps", consistency.DPS_CT, ("scale",)),
])
def test_reconstruction_defaults_are_the_best_validation_rows(part, setting, keys):
    rows = RESULTS[f"tune:{part}"]["rows"]
    score = "PSNR mean"
    assert best(rows, keys, score) == tuple(setting[k] for k in keys)


@pytest.mark.parametrize("variant", ["gaussian", "simplex_t0_only", "simplex"])
def test_anomaly_settings_are_the_best_validation_rows(variant):
    rows = [r for r in RESULTS["tune:anomaly"]["rows"] if r["method"] == variant]
    assert rows, f"no stored validation rows for {variant}"
    keys = ("t0", "eta", "octaves")
    assert best(rows, keys, "AUROC") == tuple(anomaly.SETTINGS[variant][k] for k in keys)


def test_test_split_entries_hold_per_image_values():
    for key, entry in RESULTS.items():
        if key.startswith(("ct:test", "mri:test")):
            n = entry["n"]
            assert n >= 12, key
            for name, m in entry["methods"].items():
                assert len(m["psnr"]) == len(m["ssim"]) == n, (key, name)
            for p in entry["paired"]:
                assert len(p["diff"]) == n
                np.testing.assert_allclose(p["diff"], np.subtract(entry["methods"][p["a"]]["psnr"],
                                                                  entry["methods"][p["b"]]["psnr"]))
    an = RESULTS["anomaly:test"]
    assert an["n"] >= 48
    for m in an["methods"].values():
        assert m["auroc"]["low"] <= m["auroc"]["value"] <= m["auroc"]["high"]


@pytest.mark.parametrize("views", sorted(consistency.CT_NOISY_DAMPING))
def test_noisy_ct_damping_per_view_count_is_the_best_validation_row(views):
    rows = [r for r in RESULTS["tune:ct_noisy"]["rows"]
            if r["geometry"] == views and r["eta"] == consistency.CT_NOISY["eta"] and r["weight"] == 1.0]
    assert len({r["damping"] for r in rows}) >= 3, "too few dampings measured at this view count"
    assert best(rows, ("damping",), "PSNR mean") == (consistency.CT_NOISY_DAMPING[views],)


def test_ct_settings_picks_the_nearest_tuned_view_count():
    assert consistency.ct_settings(23, 0.0) == consistency.CT
    for views, mu in consistency.CT_NOISY_DAMPING.items():
        assert consistency.ct_settings(views, 0.01)["damping"] == mu
    s = consistency.ct_settings(23, 0.01)
    s["damping"] = -1  # a fresh dict: changing it changes no default
    assert consistency.ct_settings(23, 0.01)["damping"] == consistency.CT_NOISY_DAMPING[23]
