"""The plugin manager: built once per process from the entry points in the group ``kiln``.

Kiln's built-in media kinds are entry points like any third-party plugin's (``pyproject.toml``).
Hooks whose failure must never break the caller (``published``, ``deleted``, page blocks) are
called through :func:`notify` and :func:`collect`, which log a plugin's exception and go on.
"""

from __future__ import annotations

import logging
from functools import cache
from typing import Any

import pluggy

from kiln import hookspecs

log = logging.getLogger(__name__)


@cache
def plugin_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    manager.load_setuptools_entrypoints(hookspecs.PROJECT)
    manager.check_pending()  # a misspelt hook name in a plugin fails here, not silently
    return manager


def rebuild() -> None:
    """Forget the plugin manager and everything built from it (tests that install a plugin)."""
    from kiln.mediatypes import _served, kinds

    plugin_manager.cache_clear()
    kinds.cache_clear()
    _served.cache_clear()


def _impls(hook_name: str) -> list[pluggy.HookImpl]:
    return getattr(plugin_manager().hook, hook_name).get_hookimpls()


def collect(hook_name: str, **kwargs: Any) -> list[Any]:
    """Call every plugin's ``hook_name``; a plugin that raises is logged and left out."""
    answers = []
    for impl in reversed(_impls(hook_name)):  # registration order
        try:
            answer = impl.function(**{name: kwargs[name] for name in impl.argnames})
        except Exception:
            log.exception("plugin %s failed in %s", impl.plugin_name, hook_name)
            continue
        if answer is not None:
            answers.append(answer)
    return answers


def notify(hook_name: str, **kwargs: Any) -> None:
    """Tell every plugin; only call this after the transaction that caused it committed."""
    collect(hook_name, **kwargs)


def describe() -> list[dict[str, Any]]:
    """Every registered plugin: its name, the package it came from, its hooks and its kinds."""
    manager = plugin_manager()
    dists = {id(plugin): dist for plugin, dist in manager.list_plugin_distinfo()}
    out = []
    for plugin in manager.get_plugins():
        dist = dists.get(id(plugin))
        hooks = sorted(caller.name for caller in manager.get_hookcallers(plugin) or [])
        provided = getattr(plugin, "kiln_media_kinds", None)
        out.append({
            "name": manager.get_name(plugin),
            "package": dist.metadata["Name"] if dist is not None else None,
            "version": dist.version if dist is not None else None,
            "hooks": hooks,
            "kinds": [kind.name for kind in provided()] if provided is not None else [],
        })
    return sorted(out, key=lambda p: (p["package"] != "kiln", p["name"] or ""))
