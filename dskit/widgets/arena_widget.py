"""The arena widget: one prompt to 2–4 models in columns labelled A, B, … (in a random order when
blind), a vote, then the names revealed and the leaderboard updated."""

from __future__ import annotations

import html
import os
import random
from typing import Any

import ipywidgets as W

from ..client import Client, default_client
from ..errors import ConfigurationError, DskitError
from ..evals.arena import BAD, TIE, Arena, leaderboard
from ..evals.prompts import Prompt, cup_puzzle, maths
from ..evals.side_by_side import LABELS, SideBySide
from .base import StatusLine, Worker, WorkerWidget, controls, stop_button, tagged

#: Most columns an arena round shows (the vote buttons are made for this many).
MAX_MODELS = 4
OWN = "own"


def builtin_prompts() -> dict[str, Prompt]:
    """The arena's built-in prompts by key, the cup puzzle first, then the maths set."""
    found = {"cup-zh": cup_puzzle("zh"), "cup-en": cup_puzzle("en")}
    for row in maths().itertuples(index=False):
        found[f"maths:{row.prompt_id}"] = Prompt(id=row.prompt_id, prompt=row.prompt,
                                                 expected=row.expected, kind="math")
    return found


def _choice_label(key: str, prompt: Prompt) -> str:
    if key.startswith("cup-"):
        return "cup puzzle · " + ("中文" if key == "cup-zh" else "English")
    text = " ".join(prompt.prompt.split())
    return f"maths · {text[:48]}{'…' if len(text) > 48 else ''}"


class ArenaWidget(WorkerWidget):
    """Ask 2–4 models the same prompt side by side, vote for the better answer, see who it was.

    Votes go to the arena file (`ds.arena.results()`); `vote("A")`, `undo()` and `run()` do
    from code what the buttons do.
    """

    def __init__(self, client: Client | None = None, models: list[str] | None = None, *,
                 blind: bool = True, prompt: str = "cup-zh", max_tokens: int = 512,
                 path: str | os.PathLike[str] | None = None, seed: int | None = None,
                 **options: Any) -> None:
        self.client = client or default_client()
        self.arena = Arena(path)
        # A widget is watched, not left alone: a looping reply is stopped, as in the other
        # widgets (loop_guard=False turns it off).
        self.options = {"loop_guard": True, **options}
        self._rng = random.Random(seed)
        self._prompts = builtin_prompts()
        if prompt != OWN and prompt not in self._prompts:
            raise ConfigurationError(
                f"prompt={prompt!r}: use one of {', '.join(list(self._prompts)[:3])}, … or "
                f"'{OWN}' (type your own)")
        available = list(dict.fromkeys([*(models or []), *self.client.models()]))
        self.models = tagged(W.SelectMultiple(
            options=available, value=tuple((models or available)[:2]), description="models",
            rows=min(6, max(2, len(available)))), "models")
        choices = [(_choice_label(k, p), k) for k, p in self._prompts.items()]
        self.examples = tagged(W.Dropdown(options=[*choices, ("your own prompt", OWN)],
                                          value=prompt, description="prompt"), "examples")
        self.prompt = tagged(W.Textarea(
            value=self._prompts[prompt].prompt if prompt != OWN else "",
            placeholder="Type a prompt, or pick a built-in one above",
            layout=W.Layout(width="100%", height="4.5em")), "prompt")
        # A short label the box never cuts off; what blind means in text that wraps beside it.
        self.blind = tagged(W.Checkbox(value=blind, description="blind", indent=False,
                                       layout=W.Layout(width="auto")), "blind")
        self.blind_hint = tagged(W.HTML(value=(
            "<span style='color:#667;font-size:.9em'>columns A, B, … in a random order; names, "
            "sizes, memory, speed and verdicts shown after the vote</span>")), "blind-hint")
        self.max_tokens = tagged(W.IntText(value=max_tokens, description="max tokens"),
                                 "max-tokens")
        # Unticked leaves reasoning to each model (R1 reasons by itself); ticked asks the
        # others to reason first too, so every column has reasoning to fold.
        self.think = tagged(W.Checkbox(value=bool(self.options.pop("think", False)),
                                       description="reason first", indent=False,
                                       tooltip="R1 always reasons; other models are asked to"),
                            "think")
        self.run_button = tagged(W.Button(description="Run", button_style="primary",
                                          icon="play"), "run")
        self.stop_button = stop_button()
        self.status = StatusLine()
        self.columns = tagged(W.HTML(value=""), "columns")
        self.vote_buttons = {label: tagged(W.Button(description=f"{label} better",
                                                    disabled=True), f"vote-{label.lower()}")
                             for label in LABELS[:MAX_MODELS]}
        self.vote_buttons[TIE] = tagged(W.Button(description="tie", disabled=True), "vote-tie")
        self.vote_buttons[BAD] = tagged(W.Button(description="both bad", disabled=True),
                                        "vote-bad")
        self.undo_button = tagged(W.Button(description="Undo vote", icon="undo",
                                           disabled=True), "undo")
        self.reveal_html = tagged(W.HTML(value=""), "reveal")
        self.board = tagged(W.HTML(value=""), "leaderboard")
        #: The round on screen, and the id of the vote cast on it (None before a vote).
        self.view: SideBySide | None = None
        self.vote_id: int | None = None
        self.worker = Worker(self.status, self._set_busy)

        self.examples.observe(self._on_example, names="value")
        self.run_button.on_click(lambda _: self.run())
        self.stop_button.on_click(lambda _: self.worker.stop())
        for outcome, button in self.vote_buttons.items():
            button.on_click(lambda _, o=outcome: self.vote(o))
        self.undo_button.on_click(lambda _: self.undo())
        self._show_votes(2, enabled=False)
        super().__init__([
            controls(self.models, W.VBox([self.examples, self.max_tokens, self.think,
                                          controls(self.blind, self.blind_hint)])),
            self.prompt,
            controls(self.run_button, self.stop_button),
            self.status, self.columns,
            tagged(controls(*self.vote_buttons.values(), self.undo_button), "votes"),
            self.reveal_html, self.board,
        ])
        self.add_class("dskit-arena")
        self._refresh_board()

    # --- a round ------------------------------------------------------------------------------

    def _on_example(self, change: dict[str, Any]) -> None:
        if change["new"] != OWN:
            self.prompt.value = self._prompts[change["new"]].prompt

    def _current_prompt(self) -> str | Prompt:
        """The chosen built-in prompt (graded) while its text is unchanged, else the text."""
        key, text = self.examples.value, self.prompt.value
        chosen = self._prompts.get(key)
        if chosen is not None and text.strip() == chosen.prompt.strip():
            return chosen
        return text

    def run(self, wait: bool = False) -> None:
        """Start a round in a thread (Stop stays clickable); `wait` blocks until it is done."""
        n = len(self.models.value)
        if not 2 <= n <= MAX_MODELS:
            self.status.error(f"pick 2 to {MAX_MODELS} models (ctrl/shift-click), not {n}")
            return
        if not self.prompt.value.strip():
            self.status.error("type a prompt, or pick a built-in one")
            return
        if self.worker.start(self._work) and wait:
            self.worker.wait()

    def _set_busy(self, busy: bool) -> None:
        self.run_button.disabled, self.stop_button.disabled = busy, not busy

    def _work(self) -> None:
        models = list(self.models.value)
        blind = self.blind.value
        if blind:
            self._rng.shuffle(models)
        think = {"think": True} if self.think.value else {}
        view = SideBySide(self._current_prompt(), models, client=self.client, blind=blind,
                          max_tokens=self.max_tokens.value, **think, **self.options)
        self.view, self.vote_id = view, None
        self._show_votes(len(models), enabled=False)
        self.undo_button.disabled = True
        self.reveal_html.value = ""
        mode = "at the same time" if view.concurrent else "one after another"
        shows = "how far it got" if blind else "its load step"
        self.status.busy(f"asking {len(models)} models, {mode} (each column shows {shows})…")
        self.columns.value = view.html()
        self.worker.cancel_with(view.stop)

        def redraw(v: SideBySide) -> None:
            self.columns.value = v.html()

        view.start().wait(on_update=redraw)
        failed = sum(c.state == "error" for c in view.columns)
        note = f"; {failed} column(s) failed, see there" if failed else ""
        self._show_votes(len(models), enabled=True)
        if view.stopped:
            self.status.done(f"stopped: the columns keep what arrived{note}; vote, or Run "
                             "again", stopped=True)
        else:
            self.status.done(f"done{note}: which answer is better? Vote below"
                             + ("; names, stats and verdicts are shown after the vote"
                                if blind else ""))

    # --- votes --------------------------------------------------------------------------------

    def _show_votes(self, n: int, enabled: bool) -> None:
        for i, label in enumerate(LABELS[:MAX_MODELS]):
            button = self.vote_buttons[label]
            button.description = f"{label} better" if n == 2 else f"{label} best"
            button.layout.display = "" if i < n else "none"
            button.disabled = not enabled
        self.vote_buttons[TIE].disabled = self.vote_buttons[BAD].disabled = not enabled
        self.vote_buttons[BAD].description = "both bad" if n == 2 else "all bad"

    def vote(self, outcome: str) -> int | None:
        """Vote on the round shown: "A", "B", … (better), "tie" or "bad"; reveals the names.

        Returns the vote's id (None, with the reason on the status line, if it was refused).
        """
        view = self.view
        if view is None or not view.done or self.busy:
            self.status.error("run a round first, and vote once every column is done")
            return None
        if self.vote_id is not None:
            self.status.error(f"this round has its vote ({self.vote_id}); Undo vote to change it")
            return None
        try:
            self.vote_id = self.arena.record(view, outcome)
        except DskitError as exc:
            self.status.error(exc)
            return None
        view.reveal()
        self.columns.value = view.html()
        self._show_votes(len(view.columns), enabled=False)
        self.undo_button.disabled = False
        self.reveal_html.value = _reveal_html(view, outcome)
        self._refresh_board()
        self.status.done(f"vote {self.vote_id} saved: {_said(view, outcome)}")
        return self.vote_id

    def undo(self) -> int | None:
        """Take back the vote on this round (it can then be voted again); returns its id."""
        if self.vote_id is None:
            self.status.error("no vote on this round to undo")
            return None
        undone, self.vote_id = self.arena.undo(self.vote_id), None
        self.undo_button.disabled = True
        if self.view is not None:
            self._show_votes(len(self.view.columns), enabled=True)
        self._refresh_board()
        self.status.done(f"vote {undone} undone: vote again (the names stay shown)")
        return undone

    def _refresh_board(self) -> None:
        votes = self.arena.results()
        board = leaderboard(votes)
        if board.empty:
            self.board.value = ("<div class='dskit-board-empty'><b>Leaderboard</b>: no votes "
                                "yet</div>")
            return
        n = len(votes)
        rate = "{:.2f}".format
        table = board.to_html(index=False, na_rep="–", columns=[
            "model", "score", "win_rate", "ci_low", "ci_high", "wins", "ties", "losses", "bad"],
            formatters={"score": "{:.0f}".format, "win_rate": rate, "ci_low": rate,
                        "ci_high": rate})
        self.board.value = (f"<b>Leaderboard</b> · {n} vote{'s' if n != 1 else ''}: win "
                            "rate (ties count half) with its 95 % interval, Bradley–Terry score "
                            f"(Elo scale) {table}")


def _said(view: SideBySide, outcome: str) -> str:
    """What a vote says, with the names: `A (smollm2:135m) better`."""
    if outcome.lower() == TIE:
        return "a tie"
    if outcome.lower() in (BAD, "both bad", "all bad"):
        return "every answer bad"
    label = outcome.strip().upper()
    model = next((c.model for c in view.columns if c.label == label), "?")
    return f"{label} ({model}) better"


def _reveal_html(view: SideBySide, outcome: str) -> str:
    names = " · ".join(f"<b>{c.label}</b> was {html.escape(c.model)}" for c in view.columns)
    return (f"<div class='dskit-reveal-body'>{names}. Your vote: "
            f"{html.escape(_said(view, outcome))}.</div>")
