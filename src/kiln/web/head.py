"""HEAD answers like GET without a body, on every route (feeds, files, pages, the API).

FastAPI routes declared with GET answer 405 to HEAD. Rather than list HEAD on every route, the
request is handled as GET and the body is dropped on the way out; the status and headers
(Content-Length, ETag, Last-Modified, Cache-Control) are those a GET would get. A route whose body
costs a lot to make (the account export streams every original) asks ``is_head(request)`` and
answers with the headers alone.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEAD_MARK = "kiln.head"


def is_head(request: Request) -> bool:
    """Whether the client asked with HEAD (the route sees GET): its body will be dropped."""
    return bool(request.scope.get(HEAD_MARK))


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        finished = False

        async def without_body(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body":
                if finished:
                    return
                if message.get("more_body", False):
                    return  # the rest is dropped too; the last message ends the response
                finished = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET", HEAD_MARK: True}, receive, without_body)
