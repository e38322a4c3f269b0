"""Full-text search over media: one interface, two backends (SQLite FTS5, PostgreSQL), an index kept
current after each commit. See text.py (what is indexed and how queries are read), backends.py,
upkeep.py (keeping it current) and service.py (searching, with the visibility rules)."""
