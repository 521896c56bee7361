"""The capacity benchmark against a real `streamlit run app.py` that lets one session train at a time
(FLOWLAB_MAX_TRAINERS=1): one simulated student (benchmarks/stclient.py) opens the Playground from a link, presses
Train through the button's widget id, keeps the live fragment's timer going as the frontend does, and sees the step
counter rise; Pause stops it.  Then one round of benchmarks/capacity.py with two students: one trains, the other is
told its place in line, both clicks are answered and the server's memory is read.  No Chromium; no timing
assertions."""
import asyncio
import importlib.util
import os
import sys

import pytest
from pageutil import ROOT, streamlit_server
QUERY = "density=moons&layers=4&method=relative&seed=3&batch=128"  # small: compiles fast on a loaded machine

pytest.importorskip("websockets", reason="the capacity client needs the 'websockets' package")
_spec = importlib.util.spec_from_file_location("stclient", os.path.join(ROOT, "benchmarks", "stclient.py"))
stclient = importlib.util.module_from_spec(_spec)
sys.modules["stclient"] = stclient  # its dataclasses look their module up by name; capacity.py imports it by name
_spec.loader.exec_module(stclient)
_spec = importlib.util.spec_from_file_location("capacity", os.path.join(ROOT, "benchmarks", "capacity.py"))
capacity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(capacity)


@pytest.fixture(scope="module")
def server():
    """A server of our own (the shared e2e fixture needs Chromium; this client does not), one trainer at a time."""
    with streamlit_server("capacity_e2e_server.log", env={"FLOWLAB_MAX_TRAINERS": "1"}) as started:
        yield started


def _label(s):
    try:
        return s.buttons[s.button_id(key="pg_train")].label
    except KeyError:
        return None


def test_one_websocket_student_trains_and_sees_the_step_counter_rise(server):
    server, _ = server

    async def student():
        c = stclient.StreamlitClient(server, page="playground", query=QUERY, note_pattern="in line")
        await c.connect()
        try:
            loaded = await c.wait_for(lambda s: _label(s) == "Train" and s.finished >= 1, 120)
            assert loaded, (c.error, c.state.exceptions)
            assert "layers=4" in c.state.query and not c.state.exceptions  # the page wrote its settings to the URL
            t = await c.click(key="pg_train")
            assert await c.wait_for(lambda s: s.label_after("pg_train", ("Pause",), t) is not None, 60), c.error
            assert await c.wait_for(lambda s: s.shown("Step") > 0, 240), (c.error, c.state.exceptions, c.state.metrics)
            first = c.state.shown("Step")
            assert await c.wait_for(lambda s: s.shown("Step") > first, 120), (c.error, c.state.metrics)
            assert c.state.fragment_runs > 0 and c.state.timers  # the live fragment redraws on its own timer
            t = await c.click(key="pg_train")
            assert await c.wait_for(lambda s: s.label_after("pg_train", ("Resume",), t) is not None, 60), c.error
            return c.state, c.error
        finally:
            await c.close()

    state, error = asyncio.run(student())
    assert error is None and not state.exceptions
    steps = [r.value for r in state.redraws if r.value == r.value]
    assert steps == sorted(steps) and steps[-1] > 0  # the counter only rises while training


def test_a_capacity_round_of_two_students_trains_one_and_queues_the_other_with_its_place(server):
    url, pid = server
    row = asyncio.run(capacity.round_n(url, 2, QUERY, seconds=4.0, probe=capacity.ServerProbe(pid),
                                       load_timeout=120, start_timeout=240))
    assert row["loaded"] == 2 and not row["load_failed"]
    assert row["train_click_unanswered"] == 0 and row["pause_click_unanswered"] == 0  # Train -> Pause -> Resume
    per = {p["queued"]: p for p in row["per_session"]}
    assert set(per) == {False, True}, row["per_session"]  # one trains, one waits
    trained, waited = per[False], per[True]
    assert trained["error"] is None and not trained["exceptions"]
    assert trained["first_step_s"] is not None and trained["redraws"] > 0 and trained["steps_per_s"] > 0
    assert waited["queue_place_first"] == 1 and "in line" in waited["queue_note"] and waited["steps_per_s"] == 0
    assert row["queued"] == 1 and row["admitted"] == 1 and row["queue_places"] == [1]
    assert row["server_rss_mb"]["peak"] > 0 and row["server_cpu_cores"] > 0
