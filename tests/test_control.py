"""Control messages: frames in, events out, and back."""
import pytest

from clusterkit.dist import control
from clusterkit.etf import Atom, Pid, Reference, encode

ME = Pid(Atom("a@127.0.0.1"), 5, 0, 1)
YOU = Pid(Atom("b@127.0.0.1"), 7, 0, 2)
REF = Reference(Atom("a@127.0.0.1"), 1, (1, 2, 3))


@pytest.mark.parametrize("frame, event", [
    (control.send_frame(YOU, "hi"), control.Send(YOU, "hi")),
    (control.reg_send_frame(ME, "echo", [1]), control.RegSend(ME, Atom("echo"), [1])),
    (control.link_frame(ME, YOU), control.Link(ME, YOU)),
    (control.unlink_id_frame(9, ME, YOU), control.Unlink(9, ME, YOU)),
    (control.unlink_id_ack_frame(9, ME, YOU), control.UnlinkAck(9, ME, YOU)),
    (control.exit_frame(ME, YOU, Atom("boom")), control.Exit(ME, YOU, Atom("boom"))),
    (control.exit_frame(ME, YOU, Atom("boom"), payload=False),
     control.Exit(ME, YOU, Atom("boom"))),
    (control.monitor_frame(ME, Atom("srv"), REF), control.Monitor(ME, Atom("srv"), REF)),
    (control.demonitor_frame(ME, YOU, REF), control.Demonitor(ME, YOU, REF)),
    (control.monitor_exit_frame(YOU, ME, REF, Atom("noproc")),
     control.MonitorExit(YOU, ME, REF, Atom("noproc"))),
])
def test_round_trip(frame, event):
    assert control.decode(frame) == event


@pytest.mark.parametrize("frame, why", [
    (b"", "tick"),
    (b"\x83h\x01a\x02", "expected 112"),
    (b"p" + encode("not a tuple"), "not a tuple"),
    (b"p" + encode((2, Atom(""), "not a pid")) + encode(1), "not a pid"),
    (b"p" + encode((2, Atom(""), YOU)), "payload missing"),
    (b"p" + encode((99,)), "unknown control message tag 99"),
    (b"p" + encode((2, Atom(""), YOU)) + encode(1) + b"x", "stray bytes"),
    (b"p\x83h\x03", "bad term"),
])
def test_malformed_frames(frame, why):
    with pytest.raises(control.ControlError, match=why):
        control.decode(frame)


def test_control_memo_gives_the_same_events():
    from clusterkit.dist import control
    from clusterkit.etf import Atom, Pid
    me = Pid(Atom("a@127.0.0.1"), 5, 0, 1)
    memo = control.ControlMemo()
    frames = [control.reg_send_frame(me, "echo", i) for i in range(3)] + [
        control.send_frame(me, "x"), control.reg_send_frame(me, "other", 9)]
    with_memo = [control.decode(f, memo) for f in frames]
    assert with_memo == [control.decode(f) for f in frames]
    assert with_memo[2] == control.RegSend(me, Atom("echo"), 2)
    assert with_memo[4] == control.RegSend(me, Atom("other"), 9)
