"""`kiln plugins`: the installed plugins, Kiln's own kinds among them (docs/plugins.md)."""

from __future__ import annotations

import click

from kiln import plugins as plugin_registry
from kiln.cli import echo_json, main


@main.command("plugins")
@click.option("--json", "as_json", is_flag=True)
def plugins(as_json: bool) -> None:
    """List the plugins: package, version, hooks and the media kinds each provides."""
    found = plugin_registry.describe()
    if as_json:
        echo_json(found)
        return
    for plugin in found:
        origin = f"{plugin['package']} {plugin['version']}" if plugin["package"] else "not from a package"
        kinds = f", kinds: {', '.join(plugin['kinds'])}" if plugin["kinds"] else ""
        click.echo(f"{plugin['name']} ({origin}): {', '.join(plugin['hooks'])}{kinds}")
