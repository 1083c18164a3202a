"""An MCP server for dskit's tests, on the official SDK (`MCPServer`): tools with Chinese
descriptions, and tools that hang, crash, return a huge result or report an error.

    python tools_server.py                      stdio
    python tools_server.py http PORT [TOKEN]    streamable HTTP on 127.0.0.1:PORT/mcp; with TOKEN,
                                                a request without `Authorization: Bearer TOKEN`
                                                gets 401
"""

from __future__ import annotations

import os
import sys
import time
from typing import Annotated, Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

server = MCPServer("测试工具")

#: Fixed rates for the tests (CNY per unit), not live ones.
RATES = {"CNY": 1.0, "USD": 7.2, "EUR": 7.8, "JPY": 0.048}


@server.tool()
def exchange(amount: Annotated[float, Field(description="金额")],
             from_currency: Annotated[str, Field(description="原货币代码，如 USD")],
             to_currency: Annotated[str, Field(description="目标货币代码，如 CNY")]) -> float:
    """汇率换算：按固定的示例汇率把金额从一种货币换成另一种。"""
    if from_currency not in RATES or to_currency not in RATES:
        known = "、".join(RATES)
        raise ToolError(f"不认识的货币：{from_currency} 或 {to_currency}（可用：{known}）")
    return round(amount * RATES[from_currency] / RATES[to_currency], 4)


@server.tool()
def add(a: Annotated[float, Field(description="第一个数")],
        b: Annotated[float, Field(description="第二个数")]) -> float:
    """两数相加。"""
    return a + b


@server.tool()
def hang(seconds: float = 3600) -> str:
    """一直不返回（测试超时用）。"""
    time.sleep(seconds)
    return "醒了"


@server.tool()
def crash(message: str = "服务器崩溃前的最后一行") -> str:
    """写一行到 stderr 后立即退出进程（测试崩溃用）。"""
    print(message, file=sys.stderr, flush=True)
    os._exit(3)


@server.tool()
def huge(chars: int = 5_000_000):  # no return type: the text goes back once, unstructured
    """返回一段很长的文本（测试超大结果用）。"""
    return "数" * chars


@server.tool()
def fail(reason: str) -> str:
    """报告一个错误（isError 结果）。"""
    raise ToolError(f"失败了：{reason}")


def _require_token(app: Any, token: str) -> Any:
    """The app, answering 401 to a request without the bearer token."""
    expected = f"Bearer {token}".encode()

    async def guarded(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != expected:
            await send({"type": "http.response.start", "status": 401,
                        "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await app(scope, receive, send)

    return guarded


if __name__ == "__main__":
    if sys.argv[1:2] == ["http"]:
        import uvicorn

        app = server.streamable_http_app()
        if len(sys.argv) > 3:
            app = _require_token(app, sys.argv[3])
        uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning")
    else:
        server.run()
