"""The thread policy (ddlearn.config): one intra-op thread unless DDLEARN_THREADS or set_threads asks otherwise."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = ("import torch, os, ddlearn; from ddlearn import config; "
         "print(torch.get_num_threads(), os.environ.get('OMP_NUM_THREADS'), config.set_threads(2), "
         "torch.get_num_threads(), config.set_threads(), torch.get_num_threads())")


def probe(**env):
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DDLEARN_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, "PYTHONPATH": str(ROOT), **env},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_importing_ddlearn_applies_one_thread_and_tells_child_processes():
    # torch imported first (as a notebook does), then ddlearn: one thread all the same
    threads, omp, two, now, back, after = probe()
    assert (threads, omp) == ("1", "1")
    assert (two, now) == ("2", "2"), "set_threads(n) changes the count at run time"
    assert (back, after) == ("1", "1"), "set_threads() returns to the policy"


@pytest.mark.parametrize("value, expected", [("2", "2"), ("auto", str(os.cpu_count()))])
def test_ddlearn_threads_overrides_the_default(value, expected):
    threads, omp, *_ = probe(DDLEARN_THREADS=value)
    assert threads == expected
    assert omp == ("None" if value == "auto" else value), "auto leaves OMP_NUM_THREADS unset"


def test_an_explicit_omp_num_threads_is_left_alone():
    threads, omp, *_ = probe(OMP_NUM_THREADS="2")
    assert omp == "2" and threads == "1", "the policy sets torch's count; the user's OMP_NUM_THREADS stays for BLAS"


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_ddlearn_threads_is_refused_naming_it(value):
    clean = {k: v for k, v in os.environ.items() if k != "DDLEARN_THREADS"}
    out = subprocess.run([sys.executable, "-c", "import ddlearn"], env={**clean, "DDLEARN_THREADS": value,
                                                                       "PYTHONPATH": str(ROOT)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0 and "DDLEARN_THREADS" in out.stderr
