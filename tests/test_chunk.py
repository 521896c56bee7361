"""flowlab.chunk: the chunk length model (the jitted chunk itself is exercised through the Trainer in test_train)."""
from flowlab.chunk import CHUNK_CHOICES, HEADLESS_CHUNK_SCALE, chunk_steps_for
from flowlab.train import build_trainer


def test_chunk_steps_scale_with_work():
    base = chunk_steps_for(20, 256, "relative")
    assert base in CHUNK_CHOICES
    assert chunk_steps_for(200, 256, "relative") < base  # 10x the work -> shorter chunks
    assert chunk_steps_for(2, 16, "relative") == max(CHUNK_CHOICES)
    assert chunk_steps_for(200, 4096, "self_normalizing") == min(CHUNK_CHOICES)
    assert chunk_steps_for(20, 256, "self_normalizing") <= base


def test_headless_runs_use_longer_chunks():
    assert chunk_steps_for(50, 256, "self_normalizing", HEADLESS_CHUNK_SCALE) == 200
    assert chunk_steps_for(200, 4096, "relative", HEADLESS_CHUNK_SCALE) < 50  # heavy: short chunks
    t = build_trainer("moons", layers=50, batch=256, method="self_normalizing", ntrain=500, ntest=50, headless=True)
    assert t.cfg.chunk == 200
    assert build_trainer("moons", layers=2, ntrain=500, ntest=50, chunk=7).cfg.chunk == 7  # an explicit length stands
