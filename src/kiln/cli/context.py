"""What every command shares: settings and a runtime, built on first use."""

from __future__ import annotations

from pathlib import Path

import click

from kiln.config import Settings, load_settings
from kiln.processing.dispatch import Dispatcher
from kiln.runtime import Runtime, build_runtime


class Kiln:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._settings: Settings | None = None
        self._runtime: Runtime | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(data_dir=self.data_dir)
        return self._settings

    def runtime(self, dispatcher: Dispatcher | None = None, migrate: bool = True) -> Runtime:
        if self._runtime is None:
            if migrate:
                from kiln.db.migrate import upgrade

                upgrade(self.settings.db_url)
            self._runtime = build_runtime(self.settings, dispatcher)
        return self._runtime

    def close(self) -> None:
        if self._runtime is not None:
            self._runtime.close()


pass_kiln = click.make_pass_decorator(Kiln)
