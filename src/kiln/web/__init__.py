"""The web layer: routes, templates, static files and request dependencies."""
