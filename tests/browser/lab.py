"""Page helpers: open and run a notebook in JupyterLab, drive a dskit widget, wait on its state.

Waits are on explicit state: JupyterLab's own cell models (execution state and count, error
outputs) and the `data-state`/`data-serial` a dskit `StatusLine` renders after every update.
A test for another widget is a few lines, given that it uses `dskit.widgets.base.StatusLine`
and tags its parts with `dskit.widgets.base.tagged`:

    def test_kb_notebook_and_widget(lab):
        lab.open("03_knowledge_base.ipynb")
        lab.run_all()
        kb = lab.widget("dskit-kb")
        kb.locator(".dskit-query input").fill("...")
        state, text = click_and_wait(kb, "button.dskit-search")
        assert state == "done", text
        expect(kb.locator(".dskit-results table")).to_contain_text("score")
"""

from __future__ import annotations

import os
import re
from typing import Any

#: Debian's chromium package; DSKIT_CHROMIUM points elsewhere (e.g. another distribution's).
CHROMIUM = os.environ.get("DSKIT_CHROMIUM") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying hosts this closed network
# refuses; --no-sandbox because tests run as root.
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]

#: Generous: a model runs on 2 cores and the first use assembles and loads a 491 MB file.
MODEL_TIMEOUT_MS = 600_000
NOTEBOOK_TIMEOUT_MS = 1_200_000

_NOTEBOOK_READY = """(path) => {
  const app = window.jupyterapp, w = app && app.shell.currentWidget;
  if (!w || !w.content || !w.sessionContext || !w.context || !w.context.isReady) return false;
  if (w.context.path !== path) return false;
  const s = w.sessionContext.session, k = s && s.kernel;
  return !!k && k.status === 'idle';
}"""

_ALL_CELLS_RUN = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const s = w.sessionContext.session, k = s && s.kernel;
  if (!k || ['dead', 'autorestarting', 'restarting'].includes(k.status)) {
    return `the kernel is ${k ? k.status : 'gone'}`;
  }
  const cells = w.content.widgets.filter(c => c.model.type === 'code');
  for (const [i, c] of cells.entries()) {
    const err = c.model.outputs.toJSON().find(o => o.output_type === 'error');
    if (err) return `error in code cell ${i}: ${err.ename}: ${err.evalue}`;
  }
  const done = cells.every(c => c.model.executionCount !== null
                                && c.model.executionState !== 'running');
  return done ? 'ok' : false;
}"""

FINISHED_AFTER = """([el, before]) => {
  const b = el.querySelector('.dskit-status .dskit-status-body');
  if (!b || Number(b.dataset.serial) <= before) return false;
  return ['done', 'stopped', 'error'].includes(b.dataset.state) ? b.dataset.state : false;
}"""


def expect(target: Any) -> Any:
    """Playwright's `expect`, imported late so a machine without it skips instead of erroring."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(target)


def status_serial(widget: Any) -> int:
    """The serial number of the widget's last status update (0 before any)."""
    body = widget.locator(".dskit-status .dskit-status-body")
    return int(body.first.get_attribute("data-serial") or 0) if body.count() else 0


def click_and_wait(widget: Any, button: str, timeout_ms: int = MODEL_TIMEOUT_MS,
                   spinner: bool = False) -> tuple[str, str]:
    """Click `button` (a CSS selector inside `widget`), wait for the job it starts to finish.

    `spinner=True` also checks that the status line shows its spinner meanwhile (only for jobs
    that surely last longer than a moment, such as a model's reply). Returns the final state
    (`done`, `stopped` or `error`) and the status line's text.
    """
    before = status_serial(widget)
    widget.locator(button).click()
    if spinner:
        expect(widget.locator(".dskit-status .dskit-spinner")).to_be_visible()
    handle = widget.element_handle()
    state = widget.page.wait_for_function(FINISHED_AFTER, arg=[handle, before],
                                          timeout=timeout_ms).json_value()
    return state, widget.locator(".dskit-status").inner_text()


def set_number(widget: Any, css: str, value: int) -> None:
    """Type a number into an IntText (e.g. `.dskit-max-tokens`); it syncs when it loses focus."""
    box = widget.locator(f"{css} input")
    box.fill(str(value))
    box.press("Tab")


def send_prompt(chat: Any, prompt: str, timeout_ms: int = MODEL_TIMEOUT_MS) -> tuple[str, str]:
    """Type `prompt` into a chat widget, click Send, wait for the reply to finish."""
    box = chat.locator(".dskit-prompt textarea")
    box.click()
    box.press_sequentially(prompt)
    return click_and_wait(chat, "button.dskit-send", timeout_ms, spinner=True)


#: Short, so a 0.5B model answers in seconds; Chinese, which the default stand-in speaks.
CHAT_PROMPT = "熊猫吃什么？请简短回答。"
#: What the status line says when a stand-in's reply ended without an answer.
NO_ANSWER = re.compile("looped|no answer|token limit")


def send_until_answered(chat: Any, prompt: str, tries: int = 3) -> None:
    """Send `prompt` until a reply has an answer, as a learner would: a stand-in sampled at
    temperature 0.6 sometimes loops or spends its token limit reasoning, and the page must then
    say so (checked here) before the next try."""
    for attempt in range(tries):
        state, text = send_prompt(chat, prompt)
        assert state == "done", text
        answer = chat.locator(".dskit-history .dskit-reply").last.locator(".dskit-answer")
        if answer.count() and answer.inner_text().strip():
            return
        assert NO_ANSWER.search(text), f"a reply without an answer and no reason why: {text}"
        if attempt < tries - 1:
            chat.locator("button.dskit-new").click()
    raise AssertionError(f"no answer in {tries} tries: {text}")


def check_chat_reply(chat: Any, prompt: str) -> None:
    """The last exchange shows the prompt, folded reasoning that opens, an answer and stats
    (once: on the status line, not again under the reply)."""
    exchange = chat.locator(".dskit-history")
    expect(exchange).to_contain_text(prompt)
    reply = exchange.locator(".dskit-reply").last
    details = reply.locator("details")
    expect(details.locator("summary")).to_contain_text("Reasoning")
    expect(details).not_to_have_attribute("open", re.compile(".*"))  # folded away when done
    details.locator("summary").click()
    expect(details.locator(".dskit-thinking")).to_be_visible()
    expect(reply.locator(".dskit-answer")).not_to_be_empty()
    expect(chat.locator(".dskit-status .dskit-stats-line")).to_contain_text("tok/s")
    expect(chat.locator(".dskit-status .dskit-stats-line")).to_contain_text("TTFT")
    expect(chat.locator(".dskit-status .dskit-spinner")).to_have_count(0)
    expect(exchange.locator(".dskit-stats")).to_have_count(0)
    expect(chat.locator(".dskit-notice")).to_contain_text("stand-in")


class LabPage:
    """A JupyterLab tab: open a notebook, run every cell, find dskit widgets."""

    def __init__(self, page: Any, url: str, token: str) -> None:
        self.page, self.url, self.token = page, url, token

    def open(self, notebook: str) -> None:
        """Open `notebook` (relative to the server root) and wait for its kernel to be idle."""
        # `reset`: a fresh workspace, so no notebook of an earlier test is restored beside it.
        self.page.goto(f"{self.url}lab/tree/{notebook}?reset&token={self.token}")
        self.page.wait_for_function(_NOTEBOOK_READY, arg=notebook, timeout=MODEL_TIMEOUT_MS)

    def run_all(self, timeout_ms: int = NOTEBOOK_TIMEOUT_MS) -> None:
        """Run every cell (Run ▸ Run All Cells) and wait until all ran; fail on an error output."""
        # Run All acts on the notebook tracker's current widget: activate ours first.
        self.page.evaluate("""async () => {
          const app = window.jupyterapp;
          app.shell.activateById(app.shell.currentWidget.id);
          await app.commands.execute('notebook:run-all-cells');
        }""")
        result = self.page.wait_for_function(_ALL_CELLS_RUN, timeout=timeout_ms).json_value()
        assert result == "ok", result

    def widget(self, css_class: str) -> Any:
        """The last rendered widget with this CSS class (e.g. `dskit-chat`), once visible."""
        loc = self.page.locator(f".{css_class}").last
        loc.wait_for(state="visible", timeout=MODEL_TIMEOUT_MS)
        loc.scroll_into_view_if_needed()
        return loc
