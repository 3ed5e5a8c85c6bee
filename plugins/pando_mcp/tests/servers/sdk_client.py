"""A real MCP client (the SDK's) in its own process: list the tools of a server, call one, print JSON.

    python sdk_client.py stdio -- COMMAND ARGS...   |   python sdk_client.py http URL [TOKEN]
    environment: CALL=tool-name ARGS='{"json": "object"}'
"""

import asyncio
import json
import os
import sys

from mcp import Client, StdioServerParameters


async def main() -> None:
    mode = sys.argv[1]
    if mode == "stdio":
        argv = sys.argv[sys.argv.index("--") + 1 :]
        target = StdioServerParameters(command=argv[0], args=argv[1:], env=dict(os.environ), cwd=os.getcwd())
    else:
        url = sys.argv[2]
        token = sys.argv[3] if len(sys.argv) > 3 else ""
        if token:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            target = streamable_http_client(url, http_client=create_mcp_http_client(headers={"Authorization": f"Bearer {token}"}))
        else:
            target = url
    async with Client(target, mode="legacy") as client:
        tools = await client.list_tools()
        out = {"tools": {t.name: bool(t.annotations and t.annotations.read_only_hint) for t in tools.tools}}
        if os.environ.get("CALL"):
            result = await client.call_tool(os.environ["CALL"], json.loads(os.environ.get("ARGS", "{}")))
            out["result"] = {"text": "".join(c.text for c in result.content if c.type == "text"), "is_error": result.is_error}
    print(json.dumps(out))


asyncio.run(main())
