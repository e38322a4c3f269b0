"""Keeping a site healthy: the audit log of moderation and admin actions (and, built on it, reports,
moderation actions, registration modes, blocks and the account lifecycle)."""
