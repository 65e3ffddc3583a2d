"""viz.estimates_vs_truth: one line per item and its true value, dotted, in the same colour."""
import pytest
import torch

from ddlearn import viz


def test_one_line_and_one_dotted_truth_per_item_in_matching_colours():
    traj = torch.stack([torch.linspace(0.5, v, 10) for v in (0.2, 0.3, 0.4)], 1)  # (steps, B)
    ax = viz.estimates_vs_truth(traj, torch.tensor([0.2, 0.3, 0.4]), ylabel="f", title="t")
    lines = ax.get_lines()
    assert len(lines) == 6
    curves, truths = lines[0::2], lines[1::2]
    assert [c.get_color() for c in curves] == [t.get_color() for t in truths] == ["C0", "C1", "C2"]
    assert [float(t.get_ydata()[0]) for t in truths] == pytest.approx([0.2, 0.3, 0.4])
    assert list(curves[2].get_ydata()) == traj[:, 2].tolist()
    assert ax.get_ylabel() == "f" and ax.get_title() == "t"
