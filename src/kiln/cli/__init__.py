"""The `kiln` command: thin commands over services, one module per group."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from kiln.cli.context import Kiln, pass_kiln
from kiln.errors import KilnError


class KilnGroup(click.Group):
    """Turns a refusal from any service (KilnError) into its message on stderr and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KilnError as exc:
            click.echo(f"Error: {exc.message}", err=True)
            ctx.exit(1)


@click.group(cls=KilnGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--data", "data_dir", type=click.Path(file_okay=False, path_type=Path), envvar="KILN_DATA",
              default="kiln-data", show_default=True, help="Directory holding kiln.toml, the database and media.")
@click.version_option(package_name="kiln")
@click.pass_context
def main(ctx: click.Context, data_dir: Path) -> None:
    """Kiln: a self-hosted media publishing platform."""
    ctx.obj = Kiln(data_dir)
    ctx.call_on_close(ctx.obj.close)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


from kiln.cli import (  # noqa: E402  (commands register on `main`)
    collections,
    federation,
    imports,
    media,
    moderation,
    outbox,
    plugins,
    reprocess,
    search,
    server,
    storage,
    users,
)
from kiln.plugins import plugin_manager  # noqa: E402

plugin_manager().hook.kiln_register_commands(cli=main)  # plugins' commands (kiln/hookspecs.py)

__all__ = ["main", "pass_kiln", "collections", "federation", "media", "outbox", "plugins", "reprocess", "server",
           "storage", "users", "moderation", "search", "imports"]
