"""The widgets' controls at 1280 px with JupyterLab's file browser open: nothing falls off the
right edge and no label is cut off (issue 27: the chat's "reason first" box and thinking
dropdown, and the arena's "blind" label, did)."""

from __future__ import annotations

import httpx
import pytest

pytestmark = [pytest.mark.timeout(600)]

# Building the widgets lists the models; nothing is loaded until a prompt is sent.
NOTEBOOK = {
    "cells": [{
        "cell_type": "code", "execution_count": None, "id": "layout", "metadata": {},
        "outputs": [],
        "source": ("import dskit as ds\n"
                   "from IPython.display import display\n"
                   "display(ds.widgets.chat(), ds.widgets.arena(path='layout_votes.sqlite'))"),
    }],
    "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"}},
    "nbformat": 4, "nbformat_minor": 5,
}

#: Every control's right edge against its output area's; every label's text against its box.
OVERFLOW = """(el) => {
  const area = el.closest('.jp-OutputArea-output').getBoundingClientRect();
  const out = [];
  const controls = '.dskit-controls .widget-inline-hbox, .dskit-controls .widget-button';
  for (const c of el.querySelectorAll(controls)) {
    const r = c.getBoundingClientRect();
    if (r.width && r.right > area.right + 1) out.push(`${c.className} ends at ${r.right}`);
  }
  for (const l of el.querySelectorAll('label, .widget-label, .widget-label-basic span')) {
    if (l.scrollWidth > l.clientWidth + 1) out.push(`label cut off: ${l.textContent}`);
  }
  return out;
}"""


def test_controls_wrap_at_1280_px_with_the_file_browser_open(lab, jupyter_lab):
    put = httpx.put(f"{jupyter_lab.url}api/contents/layout_test.ipynb",
                    params={"token": jupyter_lab.token}, timeout=30,
                    json={"type": "notebook", "format": "json", "content": NOTEBOOK})
    assert put.status_code in (200, 201), put.text
    lab.page.set_viewport_size({"width": 1280, "height": 1000})
    lab.open("layout_test.ipynb")
    lab.page.evaluate("() => window.jupyterapp.commands.execute('filebrowser:activate')")
    lab.page.locator(".jp-FileBrowser").wait_for(state="visible")
    lab.run_all()
    for name in ("dskit-chat", "dskit-arena"):
        widget = lab.widget(name)
        assert widget.evaluate(OVERFLOW) == [], name
    chat = lab.widget("dskit-chat")
    for part in (".dskit-think", ".dskit-think-budget", ".dskit-temperature"):
        chat.locator(part).wait_for(state="visible")
    chat.scroll_into_view_if_needed()
