"""A real MCP server (the SDK's low-level server over stdio) with tools that misbehave on purpose.

    python faulty.py [--garbage]

Tools: echo, exit_now (the process exits during the call), hang (never answers), big (a 5 MB
result), schemaless (listed without an input schema), failing (an error result), state (the
process id, to see a reconnect). ``--garbage`` prints non-JSON lines on stdout before and during
the session.
"""

import asyncio
import os
import sys

from mcp import types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

GARBAGE = "--garbage" in sys.argv
OBJECT = {"type": "object", "properties": {"text": {"type": "string"}}}
TOOLS = [
    types.Tool(name="echo", description="Echo text back", input_schema=OBJECT,
               annotations=types.ToolAnnotations(read_only_hint=True)),
    types.Tool(name="exit_now", description="Exit during the call", input_schema={"type": "object"}),
    types.Tool(name="hang", description="Never answer", input_schema={"type": "object"}),
    types.Tool(name="big", description="A 5 MB result", input_schema={"type": "object"}),
    # no properties at all: the least a server may send (the SDK refuses a schema without a type)
    types.Tool(name="schemaless", description="No input schema", input_schema={"type": "object"}),
    types.Tool(name="failing", description="Answers with an error result", input_schema={"type": "object"}),
    types.Tool(name="state", description="The server's pid", input_schema={"type": "object"}),
]


def text(value: str, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=value)], is_error=error)


async def list_tools(ctx, params):
    return types.ListToolsResult(tools=TOOLS)


async def call_tool(ctx, params):
    name, args = params.name, params.arguments or {}
    if GARBAGE:
        sys.stdout.write("garbage line: not JSON-RPC at all\n")
        sys.stdout.flush()
    if name == "echo":
        return text("echo: " + str(args.get("text", "")))
    if name == "exit_now":
        os._exit(3)
    if name == "hang":
        await asyncio.sleep(3600)
    if name == "big":
        return text("x" * (5 * 1024 * 1024))
    if name == "schemaless":
        return text("schemaless ok " + repr(sorted(args)))
    if name == "failing":
        return text("this tool failed on purpose", error=True)
    if name == "state":
        return text(str(os.getpid()))
    return text(f"unknown tool {name}", error=True)


async def main():
    if GARBAGE:
        sys.stdout.write("starting up... (garbage on stdout)\n")
        sys.stdout.flush()
    server = Server("faulty", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    asyncio.run(main())
