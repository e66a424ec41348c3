"""dqnkit's stop-signal handling in process, with real signals sent to this process."""

from __future__ import annotations

import os
import signal
import time

import pytest

from dqnkit.errors import Interrupted
from dqnkit.signals import InterruptSignals, held


def test_only_the_first_signal_raises() -> None:
    with pytest.raises(Interrupted) as raised, InterruptSignals() as signals:
        os.kill(os.getpid(), signal.SIGTERM)
    assert raised.value.signum == signal.SIGTERM
    with InterruptSignals() as signals:
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)  # the stop under way goes on
        os.kill(os.getpid(), signal.SIGTERM)
    assert signals.signum == signal.SIGINT


def test_a_deferring_handler_remembers_until_it_may_raise() -> None:
    with InterruptSignals(deferring=True) as signals:
        os.kill(os.getpid(), signal.SIGTERM)
        assert signals.raise_from_now_on() == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGINT)  # already stopping: no second raise


def test_held_raises_at_the_end_of_the_block_and_not_before() -> None:
    reached = []
    with InterruptSignals(), pytest.raises(Interrupted), held():
        os.kill(os.getpid(), signal.SIGINT)
        reached.append("after the signal")
    assert reached == ["after the signal"]
    with held():  # no dqnkit handler: nothing held, nothing changed
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_handler_restored_after_an_interrupt_treats_the_next_signal_as_late() -> None:
    with InterruptSignals() as outer:
        with pytest.raises(Interrupted), InterruptSignals():
            os.kill(os.getpid(), signal.SIGTERM)
        assert outer.signum == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGINT)  # would have raised in the middle of the command's closing words


def test_an_interrupt_swallowed_inside_a_finalizer_is_raised_again_where_the_program_goes_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Python swallows what a __del__ raises (a garbage collection can run one at any moment): the handler's
    Interrupted must not be lost there."""
    ran = []

    class Finalized:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs before __del__ returns
            ran.append("__del__ went on")

    with pytest.raises(Interrupted), InterruptSignals():
        Finalized()  # collected at once
        ran.append("the program went on")
        time.sleep(5)  # the signal comes again within RESEND_S
    assert ran == ["the program went on"]  # __del__ was cut at the signal, the program was not
    assert "Exception ignored" not in capsys.readouterr().err
