"""A small Streamlit client that speaks the browser's own protocol, for load tests without browsers.

A Streamlit page talks to its server over one WebSocket (``/_stcore/stream``, subprotocol ``streamlit``): the
server sends ``ForwardMsg`` protobufs (a ``new_session`` per script run, ``delta``s that place elements at a
``delta_path``, ``auto_rerun`` timers of ``st.fragment(run_every=...)``, ``page_info_changed`` when the script
writes the query string, ``script_finished``) and the browser sends ``BackMsg`` protobufs (``rerun_script`` with a
``ClientState``: the query string, the page, widget states, and for a fragment's timer its ``fragment_id`` with
``is_auto_rerun``).  This module plays the browser's part of that exchange (as Streamlit's frontend does it,
``frontend/app/src/App.tsx``: the first rerun names the page and the query; a fragment timer is a fixed-rate
interval that sends a fragment rerun whether or not the last one has finished; a full run clears every timer and
the run re-arms the ones it still wants; registering the same interval again keeps the running timer) and keeps
what a browser would show: the metrics, the buttons, the text of captions and alerts, and when each redraw arrived.

Two layers, so the parsing is testable without a server:

* ``PageState``: no I/O.  ``handle(ForwardMsg)`` updates what is shown and returns what the browser must do
  (arm or clear fragment timers); ``rerun_msg`` / ``click_msg`` build the BackMsgs.
* ``StreamlitClient``: asyncio, one WebSocket (the ``websockets`` package, offering permessage-deflate as browsers
  do).  It first GETs the page over HTTP like a browser (so a cookie-pinning proxy such as deploy/'s nginx deals it
  a replica), then connects with that cookie, sends the first rerun and runs the fragment timers.

What it does not do: draw anything (a browser's layout and canvas work happens on the student's machine, not the
server's), report its message cache (``cached_message_hashes`` stays empty, so the server sends every element in
full, as it does to a new browser), or send the values of widgets nobody touched (the server keeps a widget's last
value when a rerun does not name it; a browser names them all, which costs the server a few microseconds each).
"""
from __future__ import annotations

import asyncio
import re
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

STREAM = "/_stcore/stream"
SUBPROTOCOL = "streamlit"
FINISHED = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
_FRAME = re.compile(r'"frame":\s*(-?\d+)')


def number(text) -> float:
    """A metric's shown value as a number ('12,345' -> 12345.0); nan when it is not one ('—')."""
    try:
        return float(str(text).replace(",", "").strip())
    except (TypeError, ValueError):
        return float("nan")


def widget_key(widget_id: str) -> str | None:
    """The user key inside a keyed widget's id (Streamlit writes '$$ID-<hash>-<key>'), else None."""
    if widget_id.startswith("$$ID-"):
        parts = widget_id.split("-", 2)
        if len(parts) == 3 and parts[2] and parts[2] != "None":
            return parts[2]
    return None


@dataclass
class Run:
    """One script run as the browser received it: a full run or a fragment's."""

    t_start: float
    fragment_ids: tuple = ()
    metrics: dict = field(default_factory=dict)  # label -> shown value, as written in this run
    texts: list = field(default_factory=list)  # captions, markdown and alerts written in this run
    frame: int | None = None  # the live component's frame number, if this run drew it
    buttons: set = field(default_factory=set)  # ids of the buttons this run drew
    t_end: float | None = None
    status: str | None = None


@dataclass
class Redraw:
    """A run that wrote the metric being followed (``PageState.follow``): what the browser shows after it."""

    t: float  # when its first message arrived (the browser starts drawing it then)
    value: float  # the followed metric (e.g. the step counter)
    fragment: bool
    frame: int | None = None


class PageState:
    """What a browser would show of one page, from the ForwardMsgs it receives; no I/O.

    ``follow``: the label of the metric whose every redraw is recorded (the Playground's "Step").  ``clock``: the
    time source (monotonic seconds)."""

    def __init__(self, page: str = "", query: str = "", follow: str = "Step", note_pattern: str | None = None,
                 clock=time.monotonic):
        self.page, self.query, self.follow, self.clock = page, query, follow, clock
        self.note_rx = re.compile(note_pattern) if note_pattern else None
        self.session_id: str | None = None
        self.page_script_hash = ""
        self.navigated = False
        self.metrics: dict = {}  # label -> latest shown value
        self.buttons: dict = {}  # widget id -> Button proto (latest)
        self.timers: dict = {}  # fragment id -> interval (s) of the armed run_every timers
        self.run: Run | None = None  # the run being received
        self.runs = 0
        self.fragment_runs = 0
        self.finished = 0
        self.redraws: list[Redraw] = []
        self.exceptions: list[str] = []
        self.view_texts: list = []  # texts of the latest finished run that wrote the followed metric
        self.noted: list = []  # (time, text): texts matching note_pattern in finished runs of the followed metric
        self.labels: list = []  # (time, button key or id, new label): every change of a button's label
        self.messages = 0
        self.bytes = 0
        self.script_running = False

    # ---- what the browser sends -----------------------------------------------------------------------------------
    def rerun_msg(self, widget_states=(), fragment_id: str = "", auto: bool = False, first: bool = False) -> BackMsg:
        """A ``rerun_script`` BackMsg as the frontend sends it: the query string of the address bar, the page (by
        name on the first run, then by the hash the server reported), and ``widget_states``."""
        msg = BackMsg()
        cs = msg.rerun_script
        cs.query_string = self.query
        if first or not self.page_script_hash:
            cs.page_name = self.page
        else:
            cs.page_script_hash = self.page_script_hash
        if fragment_id:
            cs.fragment_id = fragment_id
        cs.is_auto_rerun = bool(auto)
        for ws in widget_states:
            cs.widget_states.widgets.append(ws)
        ci = cs.context_info
        ci.timezone, ci.timezone_offset, ci.locale = "UTC", 0, "en-US"
        return msg

    def button_id(self, key: str | None = None, label: str | None = None) -> str:
        """The widget id of a button, by its user key (preferred: the label changes, e.g. Train -> Pause) or by its
        label; KeyError when the page has not drawn it."""
        for wid, b in self.buttons.items():
            if (key is not None and widget_key(wid) == key) or (key is None and b.label == label):
                return wid
        raise KeyError(f"no button {key or label!r} on the page (buttons: {self.button_labels()})")

    def button_labels(self) -> dict:
        return {widget_key(w) or w: b.label for w, b in self.buttons.items()}

    def click_msg(self, key: str | None = None, label: str | None = None) -> BackMsg:
        """A click on a button: a full rerun with the button's trigger set (as the frontend sends it)."""
        wid = self.button_id(key, label)
        if self.buttons[wid].disabled:
            raise ValueError(f"button {key or label!r} is disabled")
        return self.rerun_msg([WidgetState(id=wid, trigger_value=True)])

    def heartbeat_msg(self) -> BackMsg:
        msg = BackMsg()
        msg.app_heartbeat = True
        return msg

    # ---- what the browser receives --------------------------------------------------------------------------------
    def handle_bytes(self, data: bytes) -> list:
        msg = ForwardMsg()
        msg.ParseFromString(data)
        self.bytes += len(data)
        return self.handle(msg)

    def handle(self, msg: ForwardMsg) -> list:
        """Apply one ForwardMsg; returns the browser's timer actions: ('arm', fragment_id, interval) and
        ('clear', fragment_id) (fragment_id None: every timer)."""
        now = self.clock()
        self.messages += 1
        kind = msg.WhichOneof("type")
        actions: list = []
        if kind == "new_session":
            ns = msg.new_session
            frags = tuple(msg.metadata.run.fragment_ids)
            if ns.initialize.session_id:
                self.session_id = ns.initialize.session_id
            if ns.page_script_hash and not self.navigated:  # st.navigation names the page in its own message
                self.page_script_hash = ns.page_script_hash
            self.run = Run(t_start=now, fragment_ids=frags)
            self.runs += 1
            if frags:
                self.fragment_runs += 1
            else:  # a full run: the frontend clears every auto-rerun timer; the run re-arms those it wants
                if self.timers:
                    actions.append(("clear", None))
                self.timers.clear()
        elif kind == "delta":
            self._delta(msg.delta, now)
        elif kind == "auto_rerun":
            fid, interval = msg.auto_rerun.fragment_id, float(msg.auto_rerun.interval)
            if fid and self.timers.get(fid) != interval:  # the same interval again keeps the running timer
                self.timers[fid] = interval
                actions.append(("arm", fid, interval))
        elif kind == "stop_auto_rerun":
            for fid in msg.stop_auto_rerun.fragment_ids:
                if self.timers.pop(fid, None) is not None:
                    actions.append(("clear", fid))
        elif kind == "navigation":  # an app with st.navigation: the page this run shows (the frontend's current page)
            self.navigated = True
            if msg.navigation.page_script_hash:
                self.page_script_hash = msg.navigation.page_script_hash
        elif kind == "page_info_changed":  # the script wrote st.query_params: the address bar follows
            self.query = msg.page_info_changed.query_string
        elif kind == "session_status_changed":
            self.script_running = msg.session_status_changed.script_is_running
        elif kind == "script_finished":
            self.finished += 1
            run = self.run
            if run is not None:
                run.t_end, run.status = now, ForwardMsg.ScriptFinishedStatus.Name(msg.script_finished)
                if not run.fragment_ids and msg.script_finished == ForwardMsg.FINISHED_SUCCESSFULLY:
                    # a full run is the whole page: what it did not draw is gone (the frontend drops stale nodes)
                    self.buttons = {k: b for k, b in self.buttons.items() if k in run.buttons}
                if self.follow in run.metrics and msg.script_finished in FINISHED:
                    self.view_texts = list(run.texts)
                    if self.note_rx is not None:
                        self.noted += [(now, t) for t in run.texts if self.note_rx.search(t)]
            self.run = None
        return actions

    def _delta(self, delta, now: float):
        if delta.WhichOneof("type") != "new_element":
            return
        el = delta.new_element
        which = el.WhichOneof("type")
        run = self.run
        if which == "metric":
            label, body = el.metric.label, el.metric.body
            self.metrics[label] = body
            if run is not None:
                run.metrics[label] = body
            if label == self.follow:
                self.redraws.append(Redraw(now, number(body), bool(run and run.fragment_ids)))
        elif which == "button":
            b = el.button
            old = self.buttons.get(b.id)
            if old is None or old.label != b.label:
                self.labels.append((now, widget_key(b.id) or b.id, b.label))
            self.buttons[b.id] = b
            if run is not None:
                run.buttons.add(b.id)
        elif which in ("markdown", "alert"):
            if run is not None:
                run.texts.append(getattr(el, which).body)
        elif which == "bidi_component":
            m = _FRAME.search(el.bidi_component.json)  # the data's "frame" (no JSON parse of the panels)
            if m and run is not None:
                run.frame = int(m.group(1))
                if self.redraws and self.redraws[-1].frame is None and self.redraws[-1].t >= run.t_start:
                    self.redraws[-1].frame = run.frame
        elif which == "exception":
            self.exceptions.append(f"{el.exception.type}: {el.exception.message}")

    # ---- reading it --------------------------------------------------------------------------------------------------
    def label_after(self, key: str, labels, t: float) -> float | None:
        """When the button ``key`` first showed one of ``labels`` after time ``t`` (None: not yet)."""
        return next((tt for tt, k, lab in self.labels if tt >= t and k == key and lab in labels), None)

    def shown(self, label: str) -> float:
        return number(self.metrics.get(label))

    def note(self, pattern: str) -> str | None:
        """The first text of the latest complete redraw of the followed metric that matches ``pattern``."""
        rx = re.compile(pattern)
        return next((t for t in self.view_texts if rx.search(t)), None)


def place_in_line(text: str | None) -> int | None:
    """k from the Playground's queue note ('... you are #k in line ...'), else None."""
    m = re.search(r"#(\d+) in line", text or "")
    return int(m.group(1)) if m else None


class StreamlitClient:
    """One simulated browser tab on ``url`` (http://host:port, or a proxy in front): ``page`` (url path, e.g.
    'playground') with ``query`` (without '?')."""

    def __init__(self, url: str, page: str = "", query: str = "", follow: str = "Step", note_pattern: str | None = None,
                 name: str = "", clock=time.monotonic):
        self.url, self.name = url.rstrip("/"), name
        self.state = PageState(page=page, query=query, follow=follow, note_pattern=note_pattern, clock=clock)
        self.clock = clock
        self.ws = None
        self.cookie = ""
        self.replica = None  # the X-FlowLab-Replica header of the page load (deploy/'s nginx)
        self.closed = False
        self.error: str | None = None
        self.sent = 0
        self._timers: dict = {}
        self._reader = None
        self._changed = asyncio.Event()

    # ---- connection -----------------------------------------------------------------------------------------------
    def _page_load(self):
        """GET the page as a browser does first (index.html): a cookie-pinning proxy answers with its cookie."""
        path = f"/{self.state.page}" + (f"?{self.state.query}" if self.state.query else "")
        req = urllib.request.Request(self.url + path, headers={"User-Agent": "flowlab-capacity-client"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=30) as r:
            r.read()
            cookies = [c.split(";", 1)[0] for c in r.headers.get_all("Set-Cookie") or []]
            self.replica = r.headers.get("X-FlowLab-Replica")
        self.cookie = "; ".join(c for c in cookies if "=" in c and c.split("=", 1)[1])

    async def connect(self, timeout: float = 30.0):
        from websockets.asyncio.client import connect  # noqa: PLC0415  (benchmark-only dependency)

        await asyncio.get_running_loop().run_in_executor(None, self._page_load)
        u = urllib.parse.urlsplit(self.url)
        ws_url = urllib.parse.urlunsplit(("wss" if u.scheme == "https" else "ws", u.netloc, u.path + STREAM, "", ""))
        headers = {"Cookie": self.cookie} if self.cookie else {}
        self.ws = await connect(ws_url, subprotocols=[SUBPROTOCOL], additional_headers=headers, max_size=None,
                                ping_interval=None, proxy=None, open_timeout=timeout,
                                user_agent_header="flowlab-capacity-client")
        self._reader = asyncio.create_task(self._read(), name=f"read-{self.name}")
        await self.send(self.state.rerun_msg(first=True))

    async def send(self, msg: BackMsg):
        if self.closed or self.ws is None:
            return
        try:
            await self.ws.send(msg.SerializeToString())
            self.sent += 1
        except Exception as e:  # noqa: BLE001 - a dropped connection is a result, not a crash of the benchmark
            self.error = self.error or f"send: {type(e).__name__}: {e}"

    async def _read(self):
        try:
            async for data in self.ws:
                if isinstance(data, str):
                    continue
                for action in self.state.handle_bytes(data):
                    self._act(action)
                self._changed.set()
        except Exception as e:  # noqa: BLE001
            if not self.closed:
                self.error = self.error or f"receive: {type(e).__name__}: {e}"
        finally:
            if not self.closed:
                self.error = self.error or "the server closed the connection"
            self._changed.set()

    def _act(self, action):
        if action[0] == "clear":
            ids = list(self._timers) if action[1] is None else [action[1]]
            for fid in ids:
                t = self._timers.pop(fid, None)
                if t is not None:
                    t.cancel()
        else:
            _, fid, interval = action
            old = self._timers.pop(fid, None)
            if old is not None:
                old.cancel()
            self._timers[fid] = asyncio.create_task(self._tick(fid, interval), name=f"tick-{self.name}-{fid}")

    async def _tick(self, fid: str, interval: float):
        """A browser's setInterval: a fragment rerun every ``interval`` s from now, at a fixed rate."""
        loop = asyncio.get_running_loop()
        t0, k = loop.time(), 0
        while not self.closed:
            k += 1
            await asyncio.sleep(max(0.0, t0 + k * interval - loop.time()))
            await self.send(self.state.rerun_msg(fragment_id=fid, auto=True))

    async def close(self):
        self.closed = True
        for t in self._timers.values():
            t.cancel()
        self._timers.clear()
        if self.ws is not None:
            try:
                await asyncio.wait_for(self.ws.close(), 10)
            except Exception:  # noqa: BLE001
                pass
        if self._reader is not None:
            self._reader.cancel()

    # ---- driving it -----------------------------------------------------------------------------------------------
    async def wait_for(self, predicate, timeout: float) -> bool:
        """Until ``predicate(state)`` holds (checked after every message) or ``timeout`` s; True if it held."""
        deadline = self.clock() + timeout
        while True:
            if predicate(self.state):
                return True
            if self.error or self.clock() >= deadline:
                return False
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.01, deadline - self.clock()))
            except asyncio.TimeoutError:
                pass

    async def click(self, key: str | None = None, label: str | None = None) -> float:
        """Click a button (by user key or label); returns when the click was sent (clock time)."""
        msg = self.state.click_msg(key, label)
        t = self.clock()
        await self.send(msg)
        return t
