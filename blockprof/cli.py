"""The ``blockprof`` command: a lazy group over one module per command.

Each command lives in ``blockprof.commands.<name>`` and is imported only when
it runs (or when ``--help`` lists it), and command modules import torch inside
their functions, so ``blockprof --help`` stays well under a second.
Every input error (click's or :class:`~blockprof.errors.BlockprofError`)
becomes one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import importlib

import click

from blockprof.errors import BlockprofError

#: command name → module defining ``cli_command``
COMMANDS = {
    "compare": "blockprof.commands.compare",
    "explain": "blockprof.commands.explain",
    "blocks": "blockprof.commands.blocks",
    "calibrate": "blockprof.commands.calibrate",
    "baseline": "blockprof.commands.baseline",
    "check": "blockprof.commands.check",
    "network": "blockprof.commands.network",
    "model": "blockprof.commands.model",
    "sweep": "blockprof.commands.sweep",
    "show": "blockprof.commands.show",
    "merge": "blockprof.commands.merge",
    "plot": "blockprof.commands.plot",
    "report": "blockprof.commands.report",
}


class InputError(click.ClickException):
    """A one-line, exit-code-2 error (click's own usage errors print three lines)."""

    exit_code = 2


def _one_line(error: click.UsageError) -> InputError:
    path = error.ctx.command_path if error.ctx else "blockprof"
    return InputError(f"{error.format_message()} (see '{path} --help')")


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return importlib.import_module(COMMANDS[name]).cli_command

    def make_context(self, info_name, args, parent=None, **extra):  # type: ignore[no-untyped-def]
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as e:
            raise _one_line(e) from None

    def invoke(self, ctx: click.Context):  # type: ignore[no-untyped-def]
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            raise _one_line(e) from None
        except BlockprofError as e:
            raise InputError(str(e)) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="blockprof")
def cli() -> None:
    """Parameters, FLOPs and latency of convolutional building blocks.

    Start with:  blockprof compare --channels 256
    """


def main() -> None:
    cli(prog_name="blockprof")
