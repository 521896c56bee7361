"""benchmarks/stclient.py, the browser-protocol client of benchmarks/capacity.py: what it reads from Streamlit's
ForwardMsgs, what it sends back (BackMsgs as the frontend builds them), its fragment timers, and capacity.py's
summaries of what each student saw.  Messages are built here; no server, no timing assertions."""
import asyncio
import importlib.util
import json
import os
import sys

import pytest
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "benchmarks")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(BENCH, f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # capacity.py imports stclient by name
    spec.loader.exec_module(mod)
    return mod


stclient = _load("stclient")
capacity = _load("capacity")
PageState = stclient.PageState
TRAIN_ID = "$$ID-0123456789abcdef0123456789abcdef-pg_train"
PAGE_HASH = "cf778e5554aca53107c781996df49ee5"


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


# ---- ForwardMsgs as the server sends them ---------------------------------------------------------------------------
def new_session(fragments=(), page_hash="", session_id=""):
    m = ForwardMsg()
    m.new_session.page_script_hash = page_hash
    if session_id:
        m.new_session.initialize.session_id = session_id
    m.metadata.run.fragment_ids.extend(fragments)
    return m


def navigation(page_hash):
    m = ForwardMsg()
    m.navigation.page_script_hash = page_hash
    return m


def metric(label, body):
    m = ForwardMsg()
    m.delta.new_element.metric.label = label
    m.delta.new_element.metric.body = body
    return m


def button(wid, label, disabled=False):
    m = ForwardMsg()
    b = m.delta.new_element.button
    b.id, b.label, b.disabled = wid, label, disabled
    return m


def caption(text):
    m = ForwardMsg()
    m.delta.new_element.markdown.body = text
    return m


def component(data_json):
    m = ForwardMsg()
    m.delta.new_element.bidi_component.json = data_json
    return m


def finished(status=ForwardMsg.FINISHED_SUCCESSFULLY):
    m = ForwardMsg()
    m.script_finished = status
    return m


def auto_rerun(fid, interval):
    m = ForwardMsg()
    m.auto_rerun.fragment_id, m.auto_rerun.interval = fid, interval
    return m


def page_run(state, step="0", label="Train", fragments=(), texts=(), frame=None):
    """One run of the Playground as the client receives it (the metrics row, the Train button, notes)."""
    out = []
    for msg in [new_session(fragments), metric("Step", step), metric("Steps/s", "1,043"),
                *([] if fragments else [button(TRAIN_ID, label)]), *map(caption, texts),
                *([] if frame is None else [component('{"panels": [[1, 2]], "frame": %d, "max_height": 300}' % frame)]),
                finished(ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY if fragments
                         else ForwardMsg.FINISHED_SUCCESSFULLY)]:
        out += state.handle(msg)
    return out


# ---- reading ---------------------------------------------------------------------------------------------------------
def test_numbers_and_widget_keys_read_as_the_page_shows_them():
    assert stclient.number("12,345") == 12345.0 and stclient.number(" 7 ") == 7.0
    assert stclient.number("—") != stclient.number("—")  # nan: not a number
    assert stclient.widget_key(TRAIN_ID) == "pg_train"
    assert stclient.widget_key("$$ID-a3f496c0ff00f9eb65ce8a1891d2319b-None") is None  # a button without a key
    assert stclient.widget_key("plain-id") is None
    assert stclient.place_in_line("Waiting for a free trainer: you are #3 in line (10 sessions ...)") == 3
    assert stclient.place_in_line("Training.") is None and stclient.place_in_line(None) is None


def test_every_redraw_of_the_step_counter_is_recorded_with_its_time_and_frame():
    clock = Clock()
    s = PageState(page="playground", clock=clock)
    page_run(s, step="0")
    clock.t = 101.0
    page_run(s, step="1,200", fragments=("live",), frame=7)
    clock.t = 101.5
    page_run(s, step="1,400", fragments=("live",), frame=8)
    assert [(r.t, r.value, r.fragment, r.frame) for r in s.redraws] == [
        (100.0, 0.0, False, None), (101.0, 1200.0, True, 7), (101.5, 1400.0, True, 8)]
    assert s.metrics["Step"] == "1,400" and s.shown("Steps/s") == 1043.0
    assert (s.runs, s.fragment_runs, s.finished) == (3, 2, 3)


def test_the_followed_views_notes_are_kept_and_the_queue_message_is_noted_with_its_time():
    clock = Clock()
    s = PageState(note_pattern=r"in line", clock=clock)
    note = "Waiting for a free trainer: you are #2 in line (10 sessions train at once on this server)."
    page_run(s, texts=("Press **Train** to build the flow.",))
    clock.t = 102.0
    page_run(s, fragments=("live",), texts=(note,))
    assert s.note(r"#\d+ in line") == note
    assert s.noted == [(102.0, note)]
    clock.t = 103.0
    page_run(s, step="100", fragments=("live",), texts=("steps line",))
    assert s.note("in line") is None and s.noted == [(102.0, note)]  # admitted: the view no longer says it


def test_a_page_exception_is_reported():
    s = PageState()
    m = ForwardMsg()
    m.delta.new_element.exception.type = "ImportError"
    m.delta.new_element.exception.message = "cannot import name 'x'"
    s.handle(m)
    assert s.exceptions == ["ImportError: cannot import name 'x'"]


def test_bytes_are_parsed_and_counted():
    s = PageState()
    data = metric("Step", "5").SerializeToString()
    s.handle_bytes(data)
    assert s.metrics == {"Step": "5"} and s.bytes == len(data) and s.messages == 1


# ---- what the client sends -------------------------------------------------------------------------------------------
def test_the_first_rerun_names_the_page_and_the_query_then_the_page_hash_from_navigation():
    s = PageState(page="playground", query="density=sine")
    first = s.rerun_msg(first=True)
    assert first.WhichOneof("type") == "rerun_script"
    assert (first.rerun_script.page_name, first.rerun_script.query_string) == ("playground", "density=sine")
    assert not first.rerun_script.page_script_hash and not first.rerun_script.is_auto_rerun
    s.handle(new_session(page_hash="main-script-hash"))
    s.handle(navigation(PAGE_HASH))  # st.navigation: the page shown is named here, not in new_session
    s.handle(new_session(page_hash="main-script-hash"))
    m = ForwardMsg()
    m.page_info_changed.query_string = "data=toy&density=sine"  # the script wrote st.query_params
    s.handle(m)
    again = s.rerun_msg()
    assert again.rerun_script.page_script_hash == PAGE_HASH and not again.rerun_script.page_name
    assert again.rerun_script.query_string == "data=toy&density=sine"
    assert BackMsg.FromString(again.SerializeToString()) == again


def test_a_click_is_a_rerun_with_the_buttons_trigger_found_by_its_key():
    s = PageState(page="playground")
    page_run(s)
    msg = s.click_msg(key="pg_train")
    (ws,) = msg.rerun_script.widget_states.widgets
    assert ws.id == TRAIN_ID and ws.trigger_value is True
    assert not msg.rerun_script.fragment_id
    assert s.click_msg(label="Train").rerun_script.widget_states.widgets[0].id == TRAIN_ID
    with pytest.raises(KeyError):
        s.click_msg(key="pg_reset")
    s.handle(button(TRAIN_ID, "Train", disabled=True))
    with pytest.raises(ValueError):
        s.click_msg(key="pg_train")


def test_button_labels_are_timed_and_a_full_run_drops_what_it_no_longer_draws():
    clock = Clock()
    s = PageState(clock=clock)
    page_run(s, label="Train")
    clock.t = 101.0
    page_run(s, label="Pause")
    assert s.label_after("pg_train", ("Pause",), 100.5) == 101.0
    assert s.label_after("pg_train", ("Resume",), 100.0) is None
    other = "$$ID-ffffffffffffffffffffffffffffffff-pg_other"
    s.handle(button(other, "Other"))
    page_run(s, label="Pause")  # a full run without the other button: the browser removes it
    assert other not in s.buttons and TRAIN_ID in s.buttons


def test_fragment_timers_follow_the_frontend():
    s = PageState()
    s.handle(new_session())
    assert s.handle(auto_rerun("live", 0.2)) == [("arm", "live", pytest.approx(0.2))]
    assert s.handle(auto_rerun("live", 0.2)) == []  # the same interval again keeps the running timer
    assert s.handle(auto_rerun("live", 0.8))[0][:2] == ("arm", "live")  # a new interval replaces it
    s.handle(auto_rerun("curves", 1.0))
    assert s.handle(new_session(fragments=("live",))) == []  # a fragment run keeps the timers
    assert s.handle(new_session()) == [("clear", None)] and s.timers == {}  # a full run clears them all
    s.handle(auto_rerun("live", 0.2))
    stop = ForwardMsg()
    stop.stop_auto_rerun.fragment_ids.append("live")
    assert s.handle(stop) == [("clear", "live")] and s.timers == {}
    auto = s.rerun_msg(fragment_id="live", auto=True).rerun_script
    assert auto.fragment_id == "live" and auto.is_auto_rerun


class FakeSocket:
    def __init__(self):
        self.sent = []

    async def send(self, data):
        self.sent.append(BackMsg.FromString(data))

    async def close(self):
        pass


def test_an_armed_timer_sends_fragment_reruns_until_cleared():
    async def run():
        c = stclient.StreamlitClient("http://127.0.0.1:1", page="playground")
        c.ws = FakeSocket()
        c._act(("arm", "live", 0.01))
        for _ in range(3000):
            if len(c.ws.sent) >= 2:
                break
            await asyncio.sleep(0.01)
        c._act(("clear", None))
        n = len(c.ws.sent)
        await asyncio.sleep(0.05)
        await c.close()
        return c.ws.sent, n

    sent, n = asyncio.run(run())
    assert len(sent) >= 2 and len(sent) == n  # nothing more after the clear
    assert all(m.rerun_script.fragment_id == "live" and m.rerun_script.is_auto_rerun for m in sent)


# ---- capacity.py's summaries --------------------------------------------------------------------------------------
class FakeClient:
    def __init__(self, name, state, error=None, replica=None):
        self.name, self.state, self.error, self.replica = name, state, error, replica


def _watched(steps, times, queued_note=None):
    clock = Clock()
    s = PageState(note_pattern=r"in line", clock=clock)
    for t, step in zip(times, steps):
        clock.t = t
        page_run(s, step=step, fragments=("live",), texts=(queued_note,) if queued_note else ())
    return s


def test_a_session_summary_reads_the_step_counter_over_wall_time():
    s = _watched(["0", "0", "200", "400", "400", "800"], [100.0, 100.5, 101.0, 102.0, 102.5, 103.0])
    p = capacity.session_summary(FakeClient("s0", s), t_click=100.0, t0=101.0, t_end=103.0)
    assert p["first_step_s"] == pytest.approx(1.0)
    assert p["steps_per_s"] == pytest.approx((800 - 200) / 2.0)
    assert p["redraws"] == 4 and p["redraws_per_s"] == pytest.approx(2.0)
    assert p["step_changes_per_s"] == pytest.approx(2 / 2.0)
    assert p["max_gap_s"] == pytest.approx(1.0) and p["queued"] is False
    assert p["longest_still_s"] == pytest.approx(1.0)  # 400 shown from 102.0 until 800 at 103.0
    assert capacity.live(p)


def test_a_counter_that_stands_still_too_long_is_not_steady_even_with_redraws():
    times = [101.0 + 0.5 * k for k in range(31)]  # 2 redraws/s for 15 s
    steps = ["200"] * 28 + ["400"] * 3  # the Step moved once, 14 s into the window
    p = capacity.session_summary(FakeClient("s0", _watched(steps, times)), 100.0, 101.0, 116.0)
    assert p["redraws_per_s"] >= capacity.GOAL_REDRAWS and p["steps_per_s"] > 0
    assert p["longest_still_s"] == pytest.approx(14.0) and p["longest_still_s"] > capacity.STILL_S
    assert not capacity.steady(p) and not capacity.live(p)
    old = {k: v for k, v in p.items() if k != "longest_still_s"}  # a record made before it was kept
    assert capacity.steady({**old, "step_changes_per_s": 1 / capacity.STILL_S})
    assert not capacity.steady({**old, "step_changes_per_s": 0.5 / capacity.STILL_S})


NOTE = "Waiting for a free trainer: you are #{} in line (10 sessions train at once on this server)."


def _round(n_live, n_waiting, n_stuck=0):
    """A round's row as round_n builds it: live students, students told their place, students never served."""
    live = [capacity.session_summary(FakeClient(f"s{i}", _watched(["100", "300", "500"], [101.0, 102.0, 103.0])),
                                     100.0, 101.0, 103.0) for i in range(n_live)]
    waiting = [capacity.session_summary(FakeClient(f"q{k}", _watched(["0"] * 3, [101.0, 102.0, 103.0],
                                                                     queued_note=NOTE.format(k + 1))),
                                        100.0, 101.0, 103.0) for k in range(n_waiting)]
    stuck = [capacity.session_summary(FakeClient(f"x{k}", PageState()), 100.0, 101.0, 103.0) for k in range(n_stuck)]
    per = live + waiting + stuck
    return {"sessions": len(per), "loaded": len(per), "seconds": 2.0, "click_to_watch_s": 1.0,
            "per_session": per, **capacity.aggregate(per)}


def test_queued_sessions_are_counted_with_their_place_and_do_not_count_as_served():
    row = _round(1, 1)
    live, waiting = row["per_session"]
    assert waiting["queued"] and waiting["queue_place_first"] == 1 and waiting["queue_note"] == NOTE.format(1)
    assert row["queued"] == 1 and row["queue_places"] == [1] and row["admitted"] == 1
    assert row["admitted_live"] is True and row["everyone_live"] is False
    assert row["steps_per_s_worst"] == 0.0 and row["admitted_steps_per_s_worst"] == pytest.approx(200.0)


def test_students_per_core_is_the_largest_n_whose_admitted_students_were_all_live():
    rows = [_round(1, 0), _round(2, 3), _round(2, 2, n_stuck=1)]
    spc = capacity.students_per_core(rows, cores=2.0)
    # N = 5: two trained live while three waited in line, told their place; N = 5 with one never served fails
    assert (spc["students"], spc["training"], spc["queued"]) == (5, 2, 3) and spc["per_core"] == 1.0
    assert spc["redraws_per_s_worst"] >= capacity.GOAL_REDRAWS
    assert capacity.students_per_core([], 2.0)["per_core"] == 0.0
    short = {**_round(2, 0), "loaded": 1, "sessions": 2}  # a page that did not load: not served
    assert capacity.students_per_core([short], 2.0)["students"] == 0


def test_the_readme_lines_are_read_from_the_record():
    rows = [_round(1, 0), _round(2, 0), _round(2, 2, n_stuck=1)]
    record = {"sessions": [1, 2, 5], "students_per_core": {"cores": 2.0}, "cli": {"cli_steps_per_s": 800.0},
              "load_average_start": [3.5, 2.0, 1.0], "load_average_end": [9.25, 5.0, 2.0], "note": "busy machine.",
              "rows": [{**r, "load_average_before": [4.0], "load_average_after": [6.0],
                        "train_click_s": {"p95": 0.25}, "pause_click_s": {"p95": 0.5},
                        "server_rss_mb": {"before": 400.0, "peak": 430.0}, "server_rss_per_session_mb": 15.0,
                        "server_cpu_cores": 1.5, "machine_busy_cores": 1.75} for r in rows],
              "recorded": {"system": {"device": "CPU · Test"}, "date": "2026-01-02T03:04:05+0000"}}
    text = "\n".join(capacity.summary_lines(record, "x.jsonl"))
    assert "**Capacity: 1.0 students per core**: 2 students training at once on 2 cores of CPU · Test" in text
    assert "200–200 steps/s" in text and "400 for all, against 800" in text and "2026-01-02" in text
    assert "430 MB at peak with 2: 15 MB per student" in text
    assert "At N = 5, beyond that: 2 students were told their place in line (#1–#2)" in text
    assert NOTE.format(1) in text and "1 showed no step at all" in text
    assert "3.5 at the start, 9.25 at the end (4 and 6 around N = 2)" in text and "busy machine." in text
    assert "may be higher" not in text
    top = {**record, "rows": record["rows"][:2], "sessions": [1, 2]}
    assert "(the largest N measured: the capacity may be higher)" in capacity.summary_lines(top, "x.jsonl")[0]
    none = {**record, "rows": record["rows"][2:], "sessions": [5]}
    assert capacity.summary_lines(none, "x.jsonl")[0].startswith("**Capacity: not reached**")


def test_deploy_readme_quotes_the_summary_of_the_latest_capacity_record():
    """deploy/README.md's capacity lines are summary_lines of the record, not typed figures (re-generate them with
    `python benchmarks/capacity.py --summary assets/benchmarks/capacity_cpu.jsonl`)."""
    path = "assets/benchmarks/capacity_cpu.jsonl"
    with open(os.path.join(ROOT, path)) as f:
        record = [json.loads(line) for line in f if line.strip()][-1]
    with open(os.path.join(ROOT, "deploy", "README.md")) as f:
        quoted = " ".join(line[1:].strip() for line in f if line.startswith(">"))
    for line in capacity.summary_lines(record, path):
        assert " ".join(line.split()) in " ".join(quoted.split())
