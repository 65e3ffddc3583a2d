"""ddlearn.report: one convention for 'mean +- sd' (sample sd) and for plain-text tables."""
import math

import numpy as np
import torch

from ddlearn.report import fmt_mean_sd, mean_sd, table


def test_mean_sd_is_the_sample_sd():
    m, sd = mean_sd([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and math.isclose(sd, np.std([1, 2, 3, 4], ddof=1))
    assert mean_sd([7.0]) == (7.0, 0.0)
    assert all(math.isnan(v) for v in mean_sd([]))


def test_fmt_mean_sd_formats_drops_non_finite_and_scales():
    assert fmt_mean_sd([1, 2, 3]) == "2.00 +- 1.00"
    assert fmt_mean_sd(torch.tensor([0.5])) == "0.50"
    assert fmt_mean_sd([1.0, float("nan"), 3.0], digits=1) == "2.0 +- 1.4"
    assert fmt_mean_sd([float("inf")]) == "-"
    assert fmt_mean_sd([0.1, 0.3], digits=0, scale=100, unit="%") == "20 +- 14%"


def test_table_aligns_columns_and_leaves_missing_cells_blank(capsys):
    text = table([{"a": 1, "bb": "x"}, {"a": 22}], ["a", "bb"], title="T")
    assert text.splitlines() == ["## T", "a   bb", "1   x", "22"]
    assert capsys.readouterr().out.startswith("## T\n")


def test_method_and_paired_rows():
    from ddlearn.report import method_rows, paired_rows

    methods = {"A": {"psnr": [30.0, 32.0], "ssim": [0.9, 0.95], "sharpness": [1.0, 0.8], "seconds": 0.123},
               "B": {"psnr": [29.0], "ssim": [0.8]}}
    rows = method_rows(methods, views=23)
    assert rows[0] == {"views": 23, "method": "A", "PSNR": "31.00 +- 1.41", "SSIM": "0.925 +- 0.035",
                       "sharpness": "0.90 +- 0.14", "s/img": "0.12"}
    assert rows[1] == {"views": 23, "method": "B", "PSNR": "29.00", "SSIM": "0.800"}
    pr = paired_rows([{"a": "A", "b": "B", "diff": [1.0, -0.5, 2.0]}], mask="x4")
    assert pr == [{"mask": "x4", "difference (paired)": "A - B", "mean +- sd": "0.83 +- 1.26", "images better": "2/3"}]
