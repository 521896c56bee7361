import pytest

from flowlab.runtime.worker import stop_all


@pytest.fixture(autouse=True)
def no_background_work_outlives_its_test():
    """Each AppTest's sessions end with it, as a browser session's would: their training workers stop."""
    yield
    stop_all()
