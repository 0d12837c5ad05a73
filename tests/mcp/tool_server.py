"""A loopback MCP server built with the ``mcp`` SDK, for the gateway's tests.

    python tool_server.py --port 9001 [--token T] [--oauth ID:SECRET]   # Streamable HTTP
    python tool_server.py --stdio                                          # stdio

Tools: echo, add, delete_everything, fail (answers isError), whoami (which credential
arrived, never its value), grow (adds the tool ``grown`` and announces the change) and
one with a 60-character name. With ``--token`` every request must carry that bearer; with
``--oauth`` a ``/token`` endpoint issues bearers for those client credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import secrets
import sys
from typing import Any

import mcp_types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

LONG_NAME = "summarise_the_quarterly_revenue_report_for_every_region_now"  # 60 characters


def _tool(name: str, description: str, props: dict[str, Any] | None = None) -> types.Tool:
    schema: dict[str, Any] = {"type": "object", "properties": props or {}}
    if props:
        schema["required"] = sorted(props)
    return types.Tool(name=name, description=description, input_schema=schema)


class ToolServer:
    def __init__(self) -> None:
        self.tools = [
            _tool("echo", "Repeat the text", {"text": {"type": "string"}}),
            _tool("add", "Add two integers", {"a": {"type": "integer"}, "b": {"type": "integer"}}),
            _tool("delete_everything", "Delete every file"),
            _tool("fail", "Always fails"),
            _tool("whoami", "Which credential reached the server"),
            _tool("grow", "Add the tool `grown` and announce it"),
            _tool(LONG_NAME, "A tool with a long name"),
        ]
        self.credential = "none"
        self.sessions: list[ServerSession] = []
        self.server = _Server("loopback-tools", on_list_tools=self.list_tools,
                              on_call_tool=self.call_tool)  # fmt: skip

    async def list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        if ctx.session not in self.sessions:
            self.sessions.append(ctx.session)
        return types.ListToolsResult(tools=self.tools)

    async def call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        args = params.arguments or {}
        if params.name == "echo":
            return _text(f"echo: {args.get('text', '')}")
        if params.name == "add":
            return _text(str(int(args["a"]) + int(args["b"])))
        if params.name == "delete_everything":
            return _text("deleted everything")
        if params.name == "fail":
            return types.CallToolResult(content=[types.TextContent(type="text", text="it failed")],
                                        is_error=True)  # fmt: skip
        if params.name == "whoami":
            headers = ctx.request.headers if ctx.request is not None else {}
            names = sorted(h for h in headers if h.startswith("x-") or h == "authorization")
            return _text(f"credential={self.credential} headers={','.join(names)}")
        if params.name == "grow":
            if "grown" not in [t.name for t in self.tools]:
                self.tools.append(_tool("grown", "Added at run time"))
            for session in self.sessions:
                with contextlib.suppress(Exception):
                    await session.send_tool_list_changed()
            return _text("grown")
        if params.name in ("grown", LONG_NAME):
            return _text(f"{params.name} ran")
        raise ValueError(f"unknown tool {params.name}")


class _Server(Server[Any]):
    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        return super().create_initialization_options(
            NotificationOptions(tools_changed=True), experimental_capabilities, extensions
        )


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)])


async def _reply(send: Any, status: int, body: bytes, ctype: bytes = b"application/json") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype)]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def http_app(tools: ToolServer, token: str | None, oauth: str | None) -> Any:
    manager = StreamableHTTPSessionManager(app=tools.server)
    issued: set[str] = set()

    async def token_endpoint(scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        expected = "Basic " + base64.b64encode((oauth or "").encode()).decode()
        if auth != expected or b"grant_type=client_credentials" not in body:
            await _reply(send, 401, b'{"error":"invalid_client"}')
            return
        new = "oauth-" + secrets.token_hex(8)
        issued.add(new)
        await _reply(send, 200, b'{"access_token":"%s","token_type":"bearer","expires_in":3600}'
                     % new.encode())  # fmt: skip

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            async with manager.run():
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
            assert message["type"] == "lifespan.shutdown"
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/token" and oauth:
            await token_endpoint(scope, receive, send)
            return
        auth = dict(scope["headers"]).get(b"authorization", b"").decode()
        bearer = auth.removeprefix("Bearer ")
        if token is not None and bearer != token:
            await _reply(send, 401, b'{"error":"bad token"}')
            return
        if oauth and bearer not in issued:
            await _reply(send, 401, b'{"error":"bad token"}')
            return
        tools.credential = "oauth" if oauth else "bearer" if token else "none"
        await manager.handle_request(scope, receive, send)

    return app


async def _stdio(tools: ToolServer) -> None:
    async with stdio_server() as (read, write):
        await tools.server.run(read, write, tools.server.create_initialization_options())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int)
    parser.add_argument("--stdio", action="store_true")
    parser.add_argument("--token")
    parser.add_argument("--oauth", help="CLIENT_ID:CLIENT_SECRET")
    args = parser.parse_args()
    tools = ToolServer()
    if args.stdio:
        asyncio.run(_stdio(tools))
        return
    app = http_app(tools, args.token, args.oauth)
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, log_level="warning")
    uvicorn.Server(config).run()
    sys.exit(0)


if __name__ == "__main__":
    main()
