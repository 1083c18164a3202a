"""MCP servers in `tools=`: the specs and config entries, results read like Python results, and
real servers on the official SDK (tests/data/mcp_servers) run as subprocesses over stdio and
streamable HTTP, on the scripted backend, scripted Ollama and OpenAI-compatible servers, the real
stand-in and `dskit serve`; after each reply no server process of ours is left."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

import dskit as ds
from dskit.backends.base import Delta, Done
from dskit.errors import ConfigurationError, McpServerError
from dskit.mcp_tools import McpHttp, McpStdio, read_result, servers_of
from dskit.tools import MAX_RESULT_CHARS, Tool, Toolbox, ToolRequest, timeout_message
from tests.fakes import interrupted

SERVERS = Path(__file__).parent / "data" / "mcp_servers"
TOOLS_SERVER = str(SERVERS / "tools_server.py")
PAGED_SERVER = str(SERVERS / "paged_server.py")
TOKEN = "mcp-test-token-8f2c1d"
QUESTION = "100 美元按示例汇率能换多少人民币？"
EXCHANGE = ToolRequest("exchange", {"amount": 100, "from_currency": "USD", "to_currency": "CNY"})


def server(**kwargs: Any) -> McpStdio:
    """The test server over stdio, named 测试."""
    return ds.mcp_stdio(sys.executable, TOOLS_SERVER, name=kwargs.pop("name", "测试"), **kwargs)


def live_children() -> set[int]:
    """This process's child processes that still run (a reaped one is gone, a zombie is not
    running)."""
    alive = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.add(child.pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def calls(*requests: ToolRequest) -> list[Done]:
    """One scripted step asking for these calls."""
    return [Done(tool_calls=list(requests))]


# --- specs and config entries (no process) ------------------------------------------------

def test_specs_are_frozen_and_their_reprs_hide_secrets() -> None:
    stdio = ds.mcp_stdio("npx", "-y", "@modelcontextprotocol/server-github",
                         env={"GITHUB_TOKEN": "ghp_secretvalue123456"})
    http = ds.mcp_http("https://mcp.example.com/mcp?api_key=querysecret987",
                       headers={"Authorization": "Bearer headersecret-abcdef"})
    shown = repr(stdio) + repr(http) + http.describe() + str([stdio, http])
    for secret in ("ghp_secretvalue123456", "querysecret987", "headersecret-abcdef"):
        assert secret not in shown
    assert "GITHUB_TOKEN" in repr(stdio) and "Authorization" in repr(http)
    assert stdio.name == "server-github" and http.name == "mcp.example.com"
    with pytest.raises(dataclasses.FrozenInstanceError):
        stdio.command = "rm"  # type: ignore[misc]
    # A secret quoted back in any dskit error is replaced too.
    assert "headersecret-abcdef" not in str(McpServerError("401 for headersecret-abcdef"))


@pytest.mark.parametrize("args, name", [
    ((sys.executable, "tools_server.py"), "tools_server"),
    (("uvx", "mcp-server-time"), "mcp-server-time"),
    (("npx", "-y", "@scope/server-files@1.2.0", "/tmp"), "server-files"),
    (("python", "-m", "weather_mcp"), "weather_mcp"),
    (("npx -y @modelcontextprotocol/server-memory",), "server-memory"),  # one command line
    (("/usr/bin/python3", "-c", "import x; x.run()"), "python3"),
])
def test_default_names_come_from_the_command(args: tuple[str, ...], name: str) -> None:
    assert ds.mcp_stdio(*args).name == name


def test_mcp_servers_entries_as_claude_desktop_and_cherry_studio_write_them() -> None:
    config = {"mcpServers": {
        "文件": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem",
                                           "/data"], "env": {"DEBUG": "1"}},
        "远程": {"type": "streamableHttp", "baseUrl": "http://127.0.0.1:9/mcp",
                 "headers": {"Authorization": "Bearer abcdefgh12345"}, "isActive": True},
        "vscode": {"type": "http", "url": "http://127.0.0.1:9/other"},
        "关掉的": {"command": "uvx", "args": ["x"], "disabled": True},
    }}
    files, remote, vscode = servers_of(config)
    assert isinstance(files, McpStdio) and files.name == "文件" and files.command == "npx"
    assert files.args == ("-y", "@modelcontextprotocol/server-filesystem", "/data")
    assert files.env == (("DEBUG", "1"),)
    assert isinstance(remote, McpHttp) and remote.name == "远程"
    assert remote.headers == (("Authorization", "Bearer abcdefgh12345"),)
    assert vscode.name == "vscode"
    # The inner map alone, and one entry alone, are read the same way.
    assert servers_of(config["mcpServers"])[0] == files
    (single,) = servers_of({"command": "uvx", "args": ["mcp-server-time"]})
    assert single.name == "mcp-server-time"


@pytest.mark.parametrize("item, message", [
    ("npx server", "tools= takes Python functions and MCP servers"),
    (42, "ds.mcp_stdio(command, *args)"),
    ({"foo": 1}, '{"command": "npx"'),
    ({"url": "http://127.0.0.1:9/sse", "type": "sse"}, "streamable HTTP"),
    ({"command": "npx", "url": "http://x"}, "keep one"),
    ({"command": "npx", "args": "-y pkg"}, "args must be a list"),
    ({"url": "ftp://x"}, "http:// or https://"),
    ({"url": "http://x", "headers": {"Authorization": "Bearer 令牌"}}, "ASCII"),
    ({"mcpServers": ["x"]}, "map names"),
])
def test_anything_else_is_a_typed_error_before_any_request(scripted: Any, item: Any,
                                                           message: str) -> None:
    client = scripted(["好的"])
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        ds.chat(QUESTION, client=client, tools=[item])
    assert client.backend.requests == []


def test_two_servers_with_one_name_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="two MCP servers are named '测试'"):
        Toolbox([server(), server()])


def test_without_the_sdk_the_error_says_which_extra(scripted: Any,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "mcp", None)  # as if `pip install dskit` without [mcp]
    client = scripted(["好的"])
    with pytest.raises(ConfigurationError, match=r"pip install 'dskit\[mcp\]'"):
        ds.chat(QUESTION, client=client, tools=[server()])
    assert client.backend.requests == []


def test_a_command_that_is_not_found_says_what_to_install(scripted: Any) -> None:
    client = scripted(["好的"])
    with pytest.raises(McpServerError, match=r"not found\. Install it") as err:
        ds.chat(QUESTION, client=client, tools=[ds.mcp_stdio("no-such-mcp-server-x1")])
    assert "npx comes with Node.js" in str(err.value) and client.backend.requests == []


# --- results and argument checks (no process) ---------------------------------------------

def test_results_are_read_like_python_results() -> None:
    import mcp_types as types

    def result(*blocks: Any, structured: Any = None, error: bool = False) -> Any:
        return types.CallToolResult(content=list(blocks), structured_content=structured,
                                    is_error=error)

    text = types.TextContent(text="七百二十元")
    png = base64.b64encode(b"\x89PNG" + b"\0" * 96).decode()
    assert read_result(result(text)) == "七百二十元"
    assert read_result(result(text, structured={"result": 720.0})) == 720.0
    assert read_result(result(text, structured={"城市": "杭州"})) == {"城市": "杭州"}
    assert read_result(result(text, types.ImageContent(data=png, mime_type="image/png"))) == \
        "七百二十元\n[image image/png, 100 bytes]"
    assert read_result(result(types.EmbeddedResource(resource=types.BlobResourceContents(
        uri="file:///a.bin", blob=png)))) == "[resource file:///a.bin, binary, 100 bytes]"
    with pytest.raises(McpServerError, match=r"^不认识的货币$"):
        read_result(result(types.TextContent(text="不认识的货币"), error=True))
    huge = read_result(result(types.TextContent(text="数" * 3_000_000)))
    assert len(huge) == MAX_RESULT_CHARS and huge.endswith("[cut: 3,000,000 characters in all]")
    big = read_result(result(text, structured={"rows": list(range(100_000))}))
    assert isinstance(big, str) and len(big) == MAX_RESULT_CHARS and big.startswith('{"rows"')


SCHEMA = {"type": "object", "required": ["amount", "to_currency"], "title": "exchangeArguments",
          "properties": {"amount": {"type": "number", "title": "Amount", "exclusiveMinimum": 0},
                         "to_currency": {"type": "string", "enum": ["CNY", "USD"]}}}


@pytest.mark.parametrize("arguments, error", [
    ({"amount": 100}, "invalid arguments: arguments: 'to_currency' is a required property"),
    ({"amount": "一百", "to_currency": "CNY"}, "invalid arguments: amount: '一百' is not of type"),
    ({"amount": -1, "to_currency": "CNY"}, "invalid arguments: amount: -1 is less than or equal"),
    ({"amount": 1, "to_currency": "英镑"}, "invalid arguments: to_currency: '英镑' is not one of"),
    ('{"amount": 1', "the arguments are not a JSON object"),
])
def test_schema_tools_check_arguments_before_any_call(arguments: Any, error: str) -> None:
    ran: list[dict[str, Any]] = []
    tool = Tool.from_schema("exchange", "汇率换算", SCHEMA, lambda **a: ran.append(a), "测试")
    call = Toolbox([tool]).run(ToolRequest("exchange", arguments))
    assert call.error is not None and call.error.startswith(error) and ran == []
    assert call.source == "测试" and "title" not in json.dumps(tool.spec())


def test_a_valid_call_runs_and_a_schema_that_cannot_be_used_does_not_refuse_it() -> None:
    tool = Tool.from_schema("exchange", "", SCHEMA, lambda **a: a["amount"] * 7.2, "测试")
    call = Toolbox([tool]).run(ToolRequest("exchange", {"amount": 100, "to_currency": "CNY"}))
    assert (call.ok, call.result, call.source) == (True, 720.0, "测试")
    assert call.text().endswith("· MCP 测试") and tool.description == "exchange"
    broken = Tool.from_schema("echo", "", {"type": "object", "properties": {"x": {"$ref": "#/n"}}},
                              lambda **a: a, "测试")
    assert Toolbox([broken]).run(ToolRequest("echo", {"x": 1})).result == {"x": 1}


def test_tool_names_are_ones_every_api_accepts() -> None:
    from dskit.mcp_tools import model_name

    assert model_name("files.read") == "files_read" and model_name("get-weather") == "get-weather"
    assert model_name("x" * 80) == "x" * 64
    chinese = model_name("查询天气")
    assert re.fullmatch(r"tool_[0-9a-f]{8}", chinese) and chinese == model_name("查询天气")
    assert chinese != model_name("查询汇率")


def test_a_name_clash_names_both_origins() -> None:
    def add(a: float, b: float) -> float:
        """Add."""
        return a + b

    remote = Tool.from_schema("add", "两数相加", {"type": "object"}, lambda **a: 0, "计算")
    with pytest.raises(ConfigurationError) as err:
        Toolbox([add, remote])
    assert "the Python function add" in str(err.value) and "'计算'" in str(err.value)
    assert "prefix=" in str(err.value)


# --- real servers over stdio --------------------------------------------------------------

@pytest.mark.subprocess
def test_stdio_tools_are_listed_with_their_schemas_and_called(
        capfd: pytest.CaptureFixture[str]) -> None:
    before = live_children()
    with Toolbox([server()], timeout=30) as box:
        specs = {s["function"]["name"]: s["function"] for s in box.specs()}
        assert set(specs) == {"exchange", "add", "hang", "crash", "huge", "fail"}
        assert specs["exchange"]["description"].startswith("汇率换算")
        assert specs["exchange"]["parameters"]["required"] == ["amount", "from_currency",
                                                               "to_currency"]
        assert specs["add"]["parameters"]["properties"]["a"] == {"description": "第一个数",
                                                                 "type": "number"}
        assert len(live_children() - before) == 1
        call = box.run(EXCHANGE)
        assert (call.ok, call.result, call.source) == (True, 720.0, "测试")
        assert call.seconds > 0
        missing = box.run(ToolRequest("add", {"a": 1}))
        assert missing.error == "invalid arguments: arguments: 'b' is a required property"
        failed = box.run(ToolRequest("fail", {"reason": "余额不足"}))
        assert failed.error is not None and failed.error.endswith("失败了：余额不足")
        unknown = box.run(ToolRequest("交易", {"amount": 1}))
        assert unknown.error is not None and unknown.error.startswith("there is no tool named")
    assert live_children() == before and box.specs() == []
    # The server logged the failure to its stderr, which is captured, not shown.
    assert "余额不足" not in capfd.readouterr().err


@pytest.mark.subprocess
def test_servers_with_the_same_tools_need_a_prefix() -> None:
    before = live_children()
    with pytest.raises(ConfigurationError, match="two tools are named") as err:
        Toolbox([server(name="甲"), server(name="乙")]).open()
    assert "'甲'" in str(err.value) and "'乙'" in str(err.value)
    assert live_children() == before  # both started, both closed
    # A dot is fine in MCP but refused by OpenAI-compatible APIs: the model sees "a_add".
    with Toolbox([server(name="甲", prefix="a."), server(name="乙", prefix="b_")]) as box:
        assert {"a_add", "b_add"} <= set(box.tools)
        call = box.run(ToolRequest("b_add", {"a": 1, "b": 2}))
        assert (call.result, call.source, call.name) == (3.0, "乙", "b_add")
        assert box.run(ToolRequest("a_add", {"a": 2, "b": 2})).result == 4.0
    assert live_children() == before


@pytest.mark.subprocess
def test_tools_over_several_pages_and_every_kind_of_content() -> None:
    paged = ds.mcp_stdio(sys.executable, PAGED_SERVER)
    with Toolbox([paged]) as box:
        assert list(box.tools) == ["picture", "lookup", "refuse"]  # one tool per page
        picture = box.run(ToolRequest("picture", {}))
        assert picture.result == ("一只猫\n[image image/png, 100 bytes]\n"
                                  "[audio audio/wav, 100 bytes]")
        assert picture.source == "paged_server"
        lookup = box.run(ToolRequest("lookup", {"word": "猫"}))
        assert lookup.result == ("[resource dict://猫]\n猫：一种动物\n[resource dict://blob, "
                                 "application/octet-stream, 100 bytes]\n"
                                 "[resource link https://example.org/猫: 猫]")
        empty = box.run(ToolRequest("lookup", {"word": ""}))
        assert empty.error == "invalid arguments: word: '' should be non-empty"
        assert box.run(ToolRequest("refuse", {})).error == "不行"


@pytest.mark.subprocess
def test_the_tool_loop_with_a_stdio_server(scripted: Any) -> None:
    before = live_children()
    client = scripted(calls(EXCHANGE, ToolRequest("add", {"a": 1})),
                      [Delta("answer", "100 美元约合 720 元人民币。")])
    reply = ds.chat(QUESTION, client=client, tools=[server()])
    assert reply.answer == "100 美元约合 720 元人民币。"
    exchange, add = reply.tool_calls
    assert (exchange.result, exchange.source, exchange.id) == (720.0, "测试", "call_1_0")
    assert exchange.seconds > 0 and add.error is not None and "'b' is a required" in add.error
    first, second = client.backend.requests
    sent = {t["function"]["name"]: t["function"] for t in first.tools}
    assert sent["exchange"]["parameters"]["properties"]["amount"]["description"] == "金额"
    assert second.messages[-2] == {"role": "tool", "content": "720.0", "name": "exchange",
                                   "tool_call_id": "call_1_0"}
    assert second.messages[-1]["content"].startswith("error: invalid arguments")
    assert "exchange(amount=100, from_currency='USD', to_currency='CNY') → 720.0" in reply.text()
    assert "MCP 测试" in reply.text()
    assert live_children() == before


@pytest.mark.subprocess
def test_python_functions_and_an_mcp_server_in_one_list(scripted: Any) -> None:
    def fee(amount: float) -> float:
        """手续费：金额的百分之一。"""
        return amount / 100

    client = scripted(calls(EXCHANGE, ToolRequest("fee", {"amount": 720})), ["手续费 7.2 元。"])
    reply = ds.chat(QUESTION, client=client, tools=[fee, server()], max_steps=3)
    assert [(c.name, c.result, c.source) for c in reply.tool_calls] == [
        ("exchange", 720.0, "测试"), ("fee", 7.2, "")]


@pytest.mark.subprocess
def test_the_step_limit_and_repeated_calls_apply_to_mcp_tools(scripted: Any) -> None:
    before = live_children()
    client = scripted(*[calls(ToolRequest("add", {"a": i, "b": 1})) for i in range(2)],
                      ["结果是 1。"])
    reply = ds.chat("一直加。", client=client, tools=[server()], max_steps=2)
    assert [c.result for c in reply.tool_calls] == [1.0, None]
    assert reply.done_reason == "max_steps" and reply.answer == "结果是 1。"
    assert "add(a=0, b=1) = 1" in client.backend.requests[-1].messages[-1]["content"]
    client = scripted(calls(EXCHANGE), calls(EXCHANGE), ["720 元。"])
    reply = ds.chat(QUESTION, client=client, tools=[server()])
    assert len(reply.tool_calls) == 1 and any("asked again" in n for n in reply.notes)
    assert "exchange(amount=100" in client.backend.requests[-1].messages[-1]["content"]
    assert live_children() == before


@pytest.mark.subprocess
def test_a_hanging_tool_times_out_and_the_reply_goes_on(scripted: Any) -> None:
    before = live_children()
    client = scripted(calls(ToolRequest("hang", {})),
                      calls(ToolRequest("add", {"a": 2, "b": 3})),  # the same server, after it
                      ["工具超时了；2 加 3 等于 5。"])
    reply = ds.chat("试试这个工具。", client=client, tools=[server()], tool_timeout=1)
    hang, add = reply.tool_calls
    assert hang.error == timeout_message(1) and hang.source == "测试"
    assert add.ok and add.result == 5.0
    assert reply.answer == "工具超时了；2 加 3 等于 5。"
    assert client.backend.requests[1].messages[-1]["content"] == f"error: {timeout_message(1)}"
    assert live_children() == before


@pytest.mark.subprocess
def test_a_crash_is_an_error_for_that_call_and_the_later_ones(scripted: Any) -> None:
    before = live_children()
    client = scripted(calls(ToolRequest("crash", {"message": "内存不足，退出"})),
                      calls(ToolRequest("add", {"a": 2, "b": 3})),
                      ["服务器崩溃了。"])
    reply = ds.chat("试试这个工具。", client=client, tools=[server()])
    crash, add = reply.tool_calls
    assert crash.error is not None and crash.error.startswith(
        "the MCP server '测试' stopped during the call")
    assert "内存不足，退出" in crash.error  # its stderr's last line
    assert add.error is not None and "stopped earlier in this reply" in add.error
    assert reply.answer == "服务器崩溃了。"
    assert live_children() == before


@pytest.mark.subprocess
def test_a_huge_result_is_cut_and_memory_stays_bounded(scripted: Any) -> None:
    before = live_children()
    rss = psutil.Process().memory_info().rss
    client = scripted(calls(ToolRequest("huge", {"chars": 1_700_000})),  # 5.1 MB of UTF-8
                      ["太长了。"])
    reply = ds.chat("给我很长的文本。", client=client, tools=[server()])
    (huge,) = reply.tool_calls
    assert huge.ok and len(huge.result) == MAX_RESULT_CHARS
    assert huge.result.endswith("… [cut: 1,700,000 characters in all]")
    sent = client.backend.requests[1].messages[-1]["content"]
    assert sent == huge.result  # what the model reads: within MAX_RESULT_CHARS
    # Nothing keeps the 5 MB (the SDK holds its last message only while the session is open).
    assert psutil.Process().memory_info().rss - rss < 100 * 2**20
    assert live_children() == before


@pytest.mark.subprocess
@pytest.mark.parametrize("failure", [interrupted("connection reset"), KeyboardInterrupt()],
                         ids=["error", "KeyboardInterrupt"])
def test_servers_close_when_the_loop_fails(scripted: Any, failure: BaseException) -> None:
    before = live_children()
    client = scripted(calls(EXCHANGE), ["部分回答", failure])
    with pytest.raises(type(failure)):
        ds.chat(QUESTION, client=client, tools=[server()])
    assert len(client.backend.requests) == 2  # the server ran a call before the failure
    assert live_children() == before


@pytest.mark.subprocess
@pytest.mark.parametrize("phase", ["while it starts", "during a call that hangs"])
def test_a_stop_closes_the_server(scripted: Any, phase: str) -> None:
    """A notebook's Stop is SIGINT: a KeyboardInterrupt in the main thread, here while a server
    that never answers starts, or while the reply waits for a call that hangs."""
    before = live_children()
    client = scripted(calls(ToolRequest("hang", {})), ["不会到这里"])
    mute = ds.mcp_stdio(sys.executable, "-c", "import time; time.sleep(600)", name="不回答")
    tools = [server()] if phase.startswith("during") else [mute]

    def stop() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
                client.backend.requests if phase.startswith("during") else live_children()
                - before):
            time.sleep(0.05)
        time.sleep(1)  # the call has been handed to the server, or the server runs
        os.kill(os.getpid(), signal.SIGINT)

    stopper = threading.Thread(target=stop, daemon=True)
    stopper.start()
    with pytest.raises(KeyboardInterrupt):
        ds.chat("等一下。", client=client, tools=tools, tool_timeout=600)
        time.sleep(60)  # never reached: kept inside the block should the signal come late
    stopper.join()
    assert live_children() == before


@pytest.mark.subprocess
def test_a_server_that_fails_to_start_says_why_and_nothing_is_left(scripted: Any) -> None:
    before = live_children()
    broken = ds.mcp_stdio(sys.executable, "-c", "import sys; print('缺少配置 WEATHER_KEY', "
                          "file=sys.stderr); sys.exit(2)", name="天气")
    client = scripted(["好的"])
    with pytest.raises(McpServerError) as err:
        ds.chat(QUESTION, client=client, tools=[server(), broken])
    message = str(err.value)
    assert message.startswith("the MCP server '天气'") and "did not start" in message
    assert "缺少配置 WEATHER_KEY" in message and "Run the command in a terminal" in message
    assert client.backend.requests == [] and live_children() == before


@pytest.mark.subprocess
def test_import_dskit_needs_no_mcp_sdk() -> None:
    code = ("import sys; sys.modules['mcp'] = None; import dskit as ds; "
            "print(ds.mcp_stdio('uvx', 'mcp-server-time').name)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={"PYTHONPATH": str(Path(__file__).parent.parent)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "mcp-server-time"


# --- real servers over streamable HTTP ----------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_http(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    """The test server over streamable HTTP on 127.0.0.1, once it accepts connections."""
    port = _free_port()
    log = (tmp / f"http-{port}.log").open("wb")
    proc = subprocess.Popen([sys.executable, TOOLS_SERVER, "http", str(port), TOKEN],
                            stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the HTTP test server exited: {(tmp / log.name).read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}/mcp"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    pytest.fail("the HTTP test server did not start within 60 s")


@pytest.fixture(scope="module")
def http_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    proc, url = _start_http(tmp_path_factory.mktemp("mcp-http"))
    yield url
    proc.kill()
    proc.wait()


def http_server(url: str, **kwargs: Any) -> McpHttp:
    return ds.mcp_http(url, {"Authorization": f"Bearer {TOKEN}"}, name="远程", **kwargs)


@pytest.mark.subprocess
def test_http_without_the_token_is_a_typed_error_without_secrets(http_url: str) -> None:
    with pytest.raises(McpServerError, match="cannot use the MCP server '远程'") as err:
        Toolbox([ds.mcp_http(http_url, {"Authorization": "Bearer wrong-token-123456"},
                             name="远程")]).open()
    assert "wrong-token-123456" not in str(err.value) and "headers (a token?)" in str(err.value)


@pytest.mark.subprocess
def test_http_tools_run_time_out_and_cut_like_stdio_ones(scripted: Any, http_url: str) -> None:
    before = live_children()
    client = scripted(calls(EXCHANGE), calls(ToolRequest("hang", {})),
                      calls(ToolRequest("huge", {"chars": 1_700_000})),
                      calls(ToolRequest("add", {"a": 2, "b": 3})), ["好了。"])
    reply = ds.chat(QUESTION, client=client, tools=[http_server(http_url)], tool_timeout=2,
                    max_steps=5)
    exchange, hang, huge, add = reply.tool_calls
    assert (exchange.result, exchange.source) == (720.0, "远程")
    assert hang.error == timeout_message(2)
    assert huge.ok and len(huge.result) == MAX_RESULT_CHARS
    assert add.result == 5.0 and reply.answer == "好了。"
    assert TOKEN not in repr(client.backend.requests) + reply.text()
    assert live_children() == before


@pytest.mark.subprocess
def test_an_http_server_that_crashes(scripted: Any, tmp_path: Path) -> None:
    proc, url = _start_http(tmp_path)
    try:
        client = scripted(calls(ToolRequest("crash", {})),
                          calls(ToolRequest("add", {"a": 2, "b": 3})), ["它崩溃了。"])
        reply = ds.chat("试试。", client=client, tools=[http_server(url)])
        crash, add = reply.tool_calls
        assert crash.error is not None and "stopped during the call" in crash.error
        assert add.error is not None and "stopped earlier in this reply" in add.error
        assert reply.answer == "它崩溃了。" and proc.wait(timeout=30) == 3
    finally:
        proc.kill()
        proc.wait()


# --- the same tools on scripted Ollama and OpenAI-compatible servers ---------------------

@pytest.mark.subprocess
def test_on_a_scripted_ollama_server(httpserver: Any) -> None:
    model = "qwen3:8b"
    show = {"details": {"family": "qwen3"}, "model_info": {"general.architecture": "qwen3"},
            "capabilities": ["completion", "tools"]}

    def chunk(**message: Any) -> dict[str, Any]:
        return {"model": model, "message": {"role": "assistant", "content": "", **message},
                "done": False}

    final = {"model": model, "message": {"role": "assistant", "content": ""}, "done": True,
             "done_reason": "stop", "eval_count": 5, "eval_duration": 10**8}
    call = {"function": {"name": "exchange", "arguments": EXCHANGE.arguments}}
    httpserver.expect_request("/api/version").respond_with_json({"version": "0.12.6"})
    httpserver.expect_request("/api/show", method="POST").respond_with_json(show)
    for body in ([chunk(tool_calls=[call]), final], [chunk(content="约 720 元。"), final]):
        httpserver.expect_oneshot_request("/api/chat", method="POST").respond_with_data(
            "".join(json.dumps(o, ensure_ascii=False) + "\n" for o in body),
            content_type="application/x-ndjson")
    client = ds.connect("ollama", host=httpserver.url_for(""), set_default=False)
    before = live_children()
    reply = ds.chat(QUESTION, model, client=client, tools=[server()], think=False)
    assert reply.answer == "约 720 元。" and reply.tool_calls[0].result == 720.0
    first, second = [r.get_json() for r, _ in httpserver.log if r.path == "/api/chat"]
    assert {t["function"]["name"] for t in first["tools"]} >= {"exchange", "add"}
    assert second["messages"][-1] == {"role": "tool", "content": "720.0",
                                      "tool_name": "exchange"}
    assert live_children() == before


@pytest.mark.subprocess
def test_on_a_scripted_openai_compatible_server(httpserver_ipv4: Any) -> None:
    def sse(*deltas: dict[str, Any], finish: str) -> str:
        events = [{"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                   "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas]
        events.append({"id": "c1", "object": "chat.completion.chunk", "created": 1,
                       "model": "m", "choices": [{"index": 0, "delta": {},
                                                  "finish_reason": finish}]})
        return "".join(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events) + \
            "data: [DONE]\n\n"

    arguments = json.dumps(EXCHANGE.arguments)
    for body in (sse({"role": "assistant", "tool_calls": [{
            "index": 0, "id": "call_7", "type": "function",
            "function": {"name": "exchange", "arguments": arguments}}]}, finish="tool_calls"),
                 sse({"content": "约 720 元。"}, finish="stop")):
        httpserver_ipv4.expect_oneshot_request("/v1/chat/completions", method="POST") \
            .respond_with_data(body, content_type="text/event-stream")
    client = ds.connect("openai", base_url=httpserver_ipv4.url_for("/v1"), model="m",
                        set_default=False)
    before = live_children()
    reply = ds.chat(QUESTION, client=client, tools=[server()])
    assert reply.answer == "约 720 元。"
    assert (reply.tool_calls[0].id, reply.tool_calls[0].result) == ("call_7", 720.0)
    second = json.loads(httpserver_ipv4.log[-1][0].get_data())
    assert second["messages"][-1] == {"role": "tool", "content": "720.0",
                                      "tool_call_id": "call_7"}
    assert live_children() == before


# --- the real stand-in, in process and through `dskit serve` -----------------------------

QWEN = "qwen2.5-coder:0.5b"
GREEDY = {"temperature": 0, "seed": 1}


def _sound(reply: Any) -> None:
    """Whatever the stand-in did: every call is recorded with its server and time, a call to
    the exchange tool with USD→CNY got the right value, and no server process is left."""
    assert isinstance(reply, ds.Reply)
    served = {"exchange", "add", "hang", "crash", "huge", "fail"}
    for call in reply.tool_calls:
        if call.name not in served:  # a name the model made up: refused, never looked up
            assert call.error is not None and call.error.startswith("there is no tool named")
            continue
        assert call.source == "测试" and call.seconds >= 0
        assert call.ok or call.error
        if call.ok and call.name == "exchange" and call.arguments == EXCHANGE.arguments:
            assert call.result == 720.0


@pytest.mark.subprocess
def test_the_stand_in_with_an_mcp_server_on_the_embedded_backend(embedded_client: Any) -> None:
    before = live_children()
    reply = ds.chat(QUESTION, QWEN, client=embedded_client, tools=[server()], max_steps=3,
                    max_tokens=150, **GREEDY)
    _sound(reply)
    assert live_children() == before


@pytest.mark.subprocess
def test_the_stand_in_with_an_mcp_server_through_dskit_serve(embedded: Any) -> None:
    srv = ds.serve.start(port=0, backend=embedded)
    try:
        client = ds.connect("ollama", host=srv.url, set_default=False)
        before = live_children()
        reply = ds.chat(QUESTION, QWEN, client=client, tools=[server()], max_steps=3,
                        max_tokens=150, **GREEDY)
        _sound(reply)
        assert live_children() == before
    finally:
        srv.stop()
