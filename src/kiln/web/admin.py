"""The admin area's people, audit log and federation delivery routes, one router (docs/admin-users.md)."""

from __future__ import annotations

from fastapi import APIRouter

from kiln.web import admin_api, admin_audit, admin_federation, admin_people

router = APIRouter()
router.include_router(admin_people.router)
router.include_router(admin_audit.router)
router.include_router(admin_api.router)
router.include_router(admin_federation.router)
