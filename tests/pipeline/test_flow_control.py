"""The worker's flow control: a resume while the flow is on keeps the events already queued.

Faust resumes the flow once when the table recovery starts and again when it completes, after
the stream partitions were resumed; mode's resume empties every stream queue, which dropped
the events fetched in between (a restarted worker missed their effect).
"""

from __future__ import annotations

from typing import Any

from mode.utils.queues import ThrowableQueue

from monitor.pipeline.worker import _App, _FlowControl


def _app_queue() -> tuple[_App, ThrowableQueue[Any]]:
    app = _App("test-flow-control", broker="kafka://127.0.0.1:1")
    queue = app.FlowControlQueue(maxsize=10, clear_on_resume=True)  # as Faust's channels
    return app, queue


def test_the_app_uses_the_worker_flow_control() -> None:
    app, _ = _app_queue()
    assert isinstance(app.flow_control, _FlowControl)


def test_a_resume_while_flowing_keeps_the_queued_events() -> None:
    app, queue = _app_queue()
    app.flow_control.resume()  # recovery starts: the flow was suspended
    queue.put_nowait("fetched after the stream partitions were resumed")
    app.flow_control.resume()  # recovery completes
    assert queue.qsize() == 1
    assert app.flow_control.is_active()


def test_a_resume_after_a_suspension_still_clears() -> None:
    app, queue = _app_queue()
    app.flow_control.resume()
    queue.put_nowait("fetched before a rebalance")
    app.flow_control.suspend()
    assert not app.flow_control.is_active()
    app.flow_control.resume()
    assert queue.qsize() == 0
    assert app.flow_control.is_active()
