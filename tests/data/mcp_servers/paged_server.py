"""A low-level MCP server for dskit's tests: its tool list comes in pages of one tool, and its
results carry every kind of content block (text, image, audio, resources) and isError."""

from __future__ import annotations

import base64

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

TOOLS = [
    types.Tool(name="picture", description="画一张图（返回图片和说明文字）。",
               input_schema={"type": "object", "properties": {}}),
    types.Tool(name="lookup", description="查一个词（返回嵌入的资源和链接）。",
               input_schema={"type": "object", "required": ["word"],
                             "properties": {"word": {"type": "string", "minLength": 1}}}),
    types.Tool(name="refuse", description="总是报告错误。",
               input_schema={"type": "object", "properties": {}}),
]
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 92).decode()  # 100 bytes


async def list_tools(ctx: object, params: types.PaginatedRequestParams | None
                     ) -> types.ListToolsResult:
    at = int(params.cursor) if params and params.cursor else 0
    more = str(at + 1) if at + 1 < len(TOOLS) else None
    return types.ListToolsResult(tools=TOOLS[at:at + 1], next_cursor=more)


async def call_tool(ctx: object, params: types.CallToolRequestParams) -> types.CallToolResult:
    if params.name == "picture":
        return types.CallToolResult(content=[
            types.TextContent(text="一只猫"),
            types.ImageContent(data=PNG, mime_type="image/png"),
            types.AudioContent(data=PNG, mime_type="audio/wav")])
    if params.name == "lookup":
        word = (params.arguments or {}).get("word", "")
        return types.CallToolResult(content=[
            types.EmbeddedResource(resource=types.TextResourceContents(
                uri=f"dict://{word}", text=f"{word}：一种动物")),
            types.EmbeddedResource(resource=types.BlobResourceContents(
                uri="dict://blob", blob=PNG, mime_type="application/octet-stream")),
            types.ResourceLink(uri=f"https://example.org/{word}", name=word)])
    return types.CallToolResult(content=[types.TextContent(text="不行")], is_error=True)


async def main() -> None:
    server = Server("分页", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
