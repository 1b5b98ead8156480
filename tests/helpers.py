"""Running the package's command-line programs in subprocesses."""

import csv
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, timeout=300, **kwargs):
    """Runs `python args...` from the repository root; returns the CompletedProcess."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def read_csv(path):
    """Rows of a CSV file as dicts."""
    with open(path, newline="") as file:
        return list(csv.DictReader(file))
