"""(being built: issue 16)"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy.orm import Session

from kiln.accounts.models import User
from kiln.media.models import MediaEntry
from kiln.runtime import Runtime

router = APIRouter()


def media_context(request: Request, session: Session, rt: Runtime, media: MediaEntry,
                  user: User | None) -> dict[str, Any]:
    """What this module adds to the media page's template context."""
    return {}
