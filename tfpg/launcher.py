"""What every tfpg command-line program shares: help, usage errors and a quiet start.

- `--help` prints the program's description and its own flags, with the chosen
  algorithm's hyperparameters and their defaults (`--algo=ppo --help`), and
  exits 0; `--helpfull` lists every algorithm's hyperparameters. Flags that
  TensorFlow and absl define for their own tools are not shown.
- A usage error prints its reason first, then one line on where to find the
  flags, and exits 2.
- TensorFlow's device set-up runs with its native log lines held back; `--tf_logs`
  prints them (see `tfpg.native_output`).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import textwrap
from typing import Callable

from absl import app, flags

from tfpg.config import describe_allowed
from tfpg.native_output import start_devices_quietly
from tfpg.version import __version__

FLAGS = flags.FLAGS
USAGE_ERROR = 2

flags.DEFINE_boolean("tf_logs", False, "Print TensorFlow's start-up log lines (held back by default).")

_HELP_FLAGS = ("--help", "-h", "-?", "--helpshort")
_VERSION_FLAGS = ("--version", "-V")


def _program() -> str:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return f"python -m {spec.name}" if spec is not None and spec.name else os.path.basename(sys.argv[0])


def _own_flags(hyperparameters: set[str]) -> list:
    """The program's flags (not TensorFlow's or absl's own, nor the hyperparameters), in definition order."""
    shown = []
    for module, module_flags in FLAGS.flags_by_module_dict().items():
        if module.startswith(("absl", "tensorflow")):
            continue
        shown += [flag for flag in module_flags if flag.name not in hyperparameters and flag not in shown]
    return shown


def _shown(default) -> str:
    if isinstance(default, str):
        return repr(default)
    return ",".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)


def _flag_line(name: str, help_text: str, default, shown: str | None = None) -> str:
    shown = shown or ("" if default is None else _shown(default))
    shown = f" (default: {shown})" if shown else ""
    return textwrap.fill(f"{help_text}{shown}", width=100, initial_indent=f"  --{name}: ",
                         subsequent_indent="      ")


def _help(algorithms: dict | None, hyperparameters: list[str], full: bool) -> str:
    main = sys.modules.get("__main__")
    lines = [(getattr(main, "__doc__", None) or "").strip(), "", "Flags:"]
    for flag in _own_flags(set(hyperparameters)):
        lines.append(_flag_line(flag.name, flag.help, flag.default))
    lines.append(_flag_line("version", f"Print tfpg's version ({__version__}) and exit.", None, ""))
    if algorithms and hyperparameters:
        chosen = _algorithm_in_argv(algorithms)
        if full:
            lines += ["", "Hyperparameters (default per algorithm):"]
            for name in hyperparameters:
                defaults = {algo: fields[name].default for algo, fields in _fields(algorithms).items() if name in fields}
                shown = {algo: _shown(value) for algo, value in defaults.items()}
                text = next(iter(shown.values())) if len(set(shown.values())) == 1 else \
                    "; ".join(f"{algo} {value}" for algo, value in shown.items())
                lines.append(_flag_line(name, FLAGS[name].help, None, text))
        else:
            lines += ["", f"Hyperparameters of {chosen} (another algorithm's: --algo=<name> --help; all: --helpfull):"]
            fields = _fields(algorithms)[chosen]
            lines += [_flag_line(name, f"{fields[name].metadata['help']} Allowed: {describe_allowed(fields[name])}.",
                                 fields[name].default) for name in hyperparameters if name in fields]
    return "\n".join(lines)


def _fields(algorithms: dict) -> dict[str, dict[str, dataclasses.Field]]:
    return {name: {f.name: f for f in dataclasses.fields(cls.config_class)} for name, cls in sorted(algorithms.items())}


def _algorithm_in_argv(algorithms: dict) -> str:
    chosen = FLAGS["algo"].default
    for argument in sys.argv[1:]:
        if argument.startswith("--algo="):
            chosen = argument.split("=", 1)[1]
    return chosen if chosen in algorithms else FLAGS["algo"].default


def _usage_error(reason: str) -> None:
    sys.stderr.write(f"{_program()}: {reason}\nThe flags: {_program()} --help\n")
    sys.exit(USAGE_ERROR)


def run_program(main: Callable, algorithms: dict | None = None, hyperparameters: list[str] | None = None) -> None:
    """Runs an absl `main` with the conventions above.

    Args:
        main: the program's `main(argv)`; an `app.UsageError` it raises is reported as a usage error.
        algorithms: name → agent class, for the hyperparameters' defaults in the help.
        hyperparameters: the names of the hyperparameter flags.
    """
    hyperparameters = hyperparameters or []

    def parse(argv: list[str]) -> list[str]:
        if any(argument in _VERSION_FLAGS for argument in argv[1:]):
            print(f"tfpg {__version__}")
            sys.exit(0)
        if any(argument in _HELP_FLAGS for argument in argv[1:]):
            print(_help(algorithms, hyperparameters, full=False))
            sys.exit(0)
        if "--helpfull" in argv[1:]:
            print(_help(algorithms, hyperparameters, full=True))
            sys.exit(0)
        try:
            remaining = FLAGS(argv)
        except flags.Error as error:
            _usage_error(str(error))
        # before absl runs the init callbacks TensorFlow registers (one lists the GPUs, calling cuInit)
        start_devices_quietly(show=FLAGS.tf_logs)
        return remaining

    def quiet_main(argv: list[str]) -> None:
        try:
            main(argv)
        except app.UsageError as error:
            _usage_error(str(error))

    app.run(quiet_main, flags_parser=parse)
