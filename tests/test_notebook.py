"""ddlearn.notebook: show_source (the exercise checkers are tested in test_exercises*.py)."""
from __future__ import annotations

import pytest

from ddlearn import forward, schedules
from ddlearn.notebook import Source, show_source


def test_show_source_of_a_function():
    src = show_source(forward.q_sample)
    assert isinstance(src, Source)
    text = str(src)
    assert text.startswith("# ddlearn/forward.py:") and "def q_sample(" in text and "return mean + std * noise" in text
    html = src._repr_html_()
    assert "ddlearn/forward.py" in html and "<span" in html and "q_sample" in html
    assert "style=" in html  # inline colours: no stylesheet needed in the book or on a code host


def test_show_source_without_docstring_and_of_other_objects():
    full, bare = str(show_source(forward.q_sample)), str(show_source(forward.q_sample, docstring=False))
    assert "Draw x_t ~ q(x_t | x_0) in closed form" in full and "closed form" not in bare
    assert "return mean + std * noise" in bare
    compile(bare.split("\n", 1)[1], "<bare>", "exec")  # still valid Python
    assert "def alpha_bars" in str(show_source(schedules.Schedule.alpha_bars))  # a property
    assert "class Schedule" in str(show_source(schedules.Schedule))
    assert "def alpha_bar" in str(show_source(schedules.linear().alpha_bar))  # a bound method
    with pytest.raises(TypeError, match="function, method, property or class"):
        show_source(3)
