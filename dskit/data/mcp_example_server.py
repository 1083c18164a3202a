"""A tiny MCP server for dskit's lessons (notebook 07): unit and currency conversion.

Run by dskit as a process over stdio, through the official MCP SDK (`pip install 'dskit[mcp]'`):

    import sys
    from importlib.resources import files
    import dskit as ds

    server = ds.mcp_stdio(sys.executable, str(files("dskit") / "data" / "mcp_example_server.py"))
    ds.chat("5 英里是多少公里？", tools=[server])

The exchange rates are fixed examples, not live ones.
"""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

server = MCPServer("换算")

#: Each unit in its dimension's base unit (metre, kilogram), under its Chinese and English names.
UNITS = {
    "length": {"米": 1.0, "m": 1.0, "公里": 1000.0, "千米": 1000.0, "km": 1000.0,
               "厘米": 0.01, "cm": 0.01, "英里": 1609.344, "mile": 1609.344,
               "英尺": 0.3048, "ft": 0.3048, "英寸": 0.0254, "inch": 0.0254},
    "mass": {"公斤": 1.0, "千克": 1.0, "kg": 1.0, "克": 0.001, "g": 0.001, "斤": 0.5,
             "磅": 0.45359237, "lb": 0.45359237},
}
#: Fixed example rates: yuan (CNY) per unit of each currency.
RATES = {"CNY": 1.0, "USD": 7.2, "EUR": 7.8, "JPY": 0.048, "HKD": 0.92}


@server.tool()
def convert_units(value: Annotated[float, Field(description="要换算的数值")],
                  from_unit: Annotated[str, Field(description="原单位，如 英里、公里、磅、公斤")],
                  to_unit: Annotated[str, Field(description="目标单位，如 公里、米、公斤")]
                  ) -> float:
    """单位换算：长度（米、公里、厘米、英里、英尺、英寸）和质量（公斤、克、斤、磅）。"""
    for table in UNITS.values():
        if from_unit in table and to_unit in table:
            return round(value * table[from_unit] / table[to_unit], 6)
    known = "、".join(u for table in UNITS.values() for u in table)
    raise ToolError(f"不能从 {from_unit} 换算到 {to_unit}；可用的单位：{known}")


@server.tool()
def exchange(amount: Annotated[float, Field(description="金额")],
             from_currency: Annotated[str, Field(description="原货币代码，如 USD")],
             to_currency: Annotated[str, Field(description="目标货币代码，如 CNY")]) -> float:
    """汇率换算（固定的示例汇率，不是实时汇率）：CNY、USD、EUR、JPY、HKD。"""
    if from_currency.upper() not in RATES or to_currency.upper() not in RATES:
        raise ToolError(f"不认识的货币；可用：{'、'.join(RATES)}")
    return round(amount * RATES[from_currency.upper()] / RATES[to_currency.upper()], 4)


if __name__ == "__main__":
    server.run()
