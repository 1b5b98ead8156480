"""Benchmarks that compare tfpg with another library: each run in a subprocess of its own, one result per line.

A script calls itself with `--run=...` under the Python of the library that runs (tfpg's, or one with the other
library installed), with `--threads` threads for every tensor and BLAS library, from the repository root; the
subprocess prints its result as the last line of its output, a JSON object.
"""

import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def launch(python: str, script: str, run: str, threads: int, *flags: str) -> dict:
    """Runs `python script --run=run --threads=threads flags...` and returns the JSON result it printed last."""
    count = str(threads)
    environment = {**os.environ, "TF_NUM_INTRAOP_THREADS": count, "TF_NUM_INTEROP_THREADS": count,
                   "OMP_NUM_THREADS": count, "MKL_NUM_THREADS": count, "PYTHONPATH": ROOT}
    command = [python, os.path.abspath(script), f"--run={run}", f"--threads={count}", *flags]
    result = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"{run} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def record(result: dict, out: str | None) -> None:
    """Prints a result and appends it to the JSON-lines file `out` (if given)."""
    print(json.dumps(result), flush=True)
    if out:
        with open(out, "a") as file:
            file.write(json.dumps(result) + "\n")
