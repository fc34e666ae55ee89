"""Fuzz targets: every parser that reads bytes or text from outside (issue 13).

Each target feeds random and mutated-valid input to one parser and accepts only its
documented error type: anything else (IndexError, RecursionError, a hang) is a crash.

A short run is part of `make test`. For a long run set CLUSTERKIT_FUZZ_EXAMPLES, e.g.

    CLUSTERKIT_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q -p no:nbval tests/test_fuzz.py

and CLUSTERKIT_FUZZ_REPORT=path to get the number of cases each target ran (one
"target cases" line each); tests/README.md records the figures of the last long run.
"""
import os
import zlib
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clusterkit import erlterm, etf
from clusterkit.cluster import gossip_wire
from clusterkit.config import ConfigError, parse_sys_config
from clusterkit.dist import control, framing
from clusterkit.dist import handshake as hs
from clusterkit.epmd import protocol as ep
from clusterkit.etf import Atom, Pid, Reference

from test_etf import terms  # the codec's own term strategy

EXAMPLES = int(os.environ.get("CLUSTERKIT_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
CASES: Counter = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_cases():
    yield
    path = os.environ.get("CLUSTERKIT_FUZZ_REPORT")
    if path:
        with open(path, "a") as f:
            for target, n in sorted(CASES.items()):
                f.write(f"{target} {n}\n")


def mutate(data: bytes, draw) -> bytes:
    """A few byte flips, cuts, insertions and deletions of valid input."""
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "cut", "insert", "delete", "dup"]))
        i = draw(st.integers(0, max(len(b) - 1, 0)))
        if op == "set" and b:
            b[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del b[i:]
        elif op == "insert":
            b[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "delete" and b:
            del b[i:i + draw(st.integers(1, 8))]
        elif op == "dup":
            b[i:i] = b[i:i + draw(st.integers(1, 16))]
    return bytes(b)


def chunks(data: bytes, draw) -> list[bytes]:
    """data cut at random places, as TCP may deliver it."""
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=4)))
    edges = [0, *cuts, len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


# --------------------------------------------------------------------------- ETF decoder

@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_etf_random(data):
    CASES["etf decode (random bytes)"] += 1
    for candidate in (data, b"\x83" + data, b"\x83P" + data):
        try:
            etf.decode(candidate)
        except etf.ETFError:
            pass


@FUZZ
@given(terms, st.booleans(), st.data())
def test_fuzz_etf_mutated(term, compress, data):
    CASES["etf decode (mutated terms)"] += 1
    valid = etf.encode(term)
    if compress:
        body = valid[1:]
        valid = b"\x83P" + len(body).to_bytes(4, "big") + zlib.compress(body)
    try:
        etf.decode(mutate(valid, data.draw), max_inflated=1 << 20)
    except etf.ETFError:
        pass


# --------------------------------------------------------------------------- EPMD

def _valid_requests():
    node = ep.NodeInfo.create("fuzz", 4370)
    return [ep.encode_alive2_req(node), ep.encode_port_please2_req("fuzz"), ep.encode_names_req(),
            ep.encode_dump_req(), ep.encode_kill_req(), ep.encode_stop_req("fuzz")]


EVENTS = (ep.Send, ep.Close, ep.Shutdown, ep.Registered, ep.Unregistered, ep.Evict, ep.Notice,
          ep.ProtocolError)


def _feed_epmd(stream: bytes, draw):
    registry = ep.Registry()
    registry.register(ep.NodeInfo.create("fuzz", 4370))   # so lookups and STOP find something
    conn = ep.ServerConnection(registry, local_peer=draw(st.booleans()), relaxed=draw(st.booleans()))
    events = []
    for piece in chunks(stream, draw):
        events += conn.receive_data(piece)
    events += conn.receive_eof() if draw(st.booleans()) else conn.connection_lost()
    assert all(isinstance(e, EVENTS) for e in events), events


@FUZZ
@given(st.binary(max_size=300), st.data())
def test_fuzz_epmd_requests_random(stream, data):
    CASES["epmd request parser (random)"] += 1
    _feed_epmd(stream, data.draw)


@FUZZ
@given(st.sampled_from(_valid_requests()), st.data())
def test_fuzz_epmd_requests_mutated(valid, data):
    CASES["epmd request parser (mutated)"] += 1
    _feed_epmd(mutate(valid, data.draw), data.draw)


REPLY_PARSERS = [ep.Alive2ReplyParser, ep.Port2ReplyParser, ep.NamesReplyParser,
                 ep.DumpReplyParser, ep.KillReplyParser, ep.StopReplyParser]


@FUZZ
@given(st.sampled_from(REPLY_PARSERS), st.binary(max_size=200), st.data())
def test_fuzz_epmd_replies(parser_type, stream, data):
    CASES["epmd reply parsers (client side)"] += 1
    parser = parser_type()
    try:
        for piece in chunks(stream, data.draw):
            parser.receive_data(piece)
        parser.receive_eof()
    except ep.ProtocolError:
        pass


# --------------------------------------------------------------------------- handshake

COOKIE = "fuzzcookie"


def _pair():
    a = hs.Handshake(hs.Role.INITIATOR, "a@127.0.0.1", 1, peer_node="b@127.0.0.1",
                     cookie=COOKIE, challenge=11)
    b = hs.Handshake(hs.Role.ACCEPTOR, "b@127.0.0.1", 2, challenge=22)
    return a, b


def _honest_streams():
    """What each side sends in a good handshake: (initiator's bytes, acceptor's bytes)."""
    a, b = _pair()
    to_b, to_a = a.data_to_send(), b""
    for ev in b.receive_data(to_b):
        if isinstance(ev, hs.NameReceived):
            b.accept(COOKIE)
    to_a = b.data_to_send()
    a.receive_data(to_a)
    more_to_b = a.data_to_send()
    b.receive_data(more_to_b)
    last_to_a = b.data_to_send()
    return to_b + more_to_b, to_a + last_to_a


HONEST_TO_ACCEPTOR, HONEST_TO_INITIATOR = _honest_streams()
HS_EVENTS = (hs.NameReceived, hs.AliveQuery, hs.AliveConfirmed, hs.SimultaneousAccepted,
             hs.Completed, hs.Failed)


def _drive(side: hs.Handshake, stream: bytes, draw):
    """Feed stream to one side, answering its questions as a runtime would."""
    for piece in chunks(stream, draw):
        if side.state in (hs.State.CONNECTED, hs.State.CLOSED):
            return
        for ev in side.receive_data(piece):
            assert isinstance(ev, HS_EVENTS), ev
            if isinstance(ev, hs.NameReceived):
                choice = draw(st.sampled_from(["accept", "alive", "reject"]))
                if choice == "accept":
                    side.accept(COOKIE)
                elif choice == "alive":
                    side.ask_alive(COOKIE)
                else:
                    side.reject("not_allowed")
            elif isinstance(ev, hs.AliveQuery):
                side.answer_alive(draw(st.booleans()))
        side.data_to_send()
    if side.state not in (hs.State.CONNECTED, hs.State.CLOSED):
        assert isinstance(side.connection_lost(), hs.Failed)


@FUZZ
@given(st.binary(max_size=300), st.data())
def test_fuzz_handshake_acceptor_random(stream, data):
    CASES["handshake acceptor (random)"] += 1
    _drive(_pair()[1], stream, data.draw)


@FUZZ
@given(st.data())
def test_fuzz_handshake_acceptor_mutated(data):
    CASES["handshake acceptor (mutated)"] += 1
    _drive(_pair()[1], mutate(HONEST_TO_ACCEPTOR, data.draw), data.draw)


@FUZZ
@given(st.binary(max_size=300), st.data())
def test_fuzz_handshake_initiator_random(stream, data):
    CASES["handshake initiator (random)"] += 1
    _drive(_pair()[0], stream, data.draw)


@FUZZ
@given(st.data())
def test_fuzz_handshake_initiator_mutated(data):
    CASES["handshake initiator (mutated)"] += 1
    _drive(_pair()[0], mutate(HONEST_TO_INITIATOR, data.draw), data.draw)


# --------------------------------------------------------------------------- framing, control

@FUZZ
@given(st.binary(max_size=300), st.data())
def test_fuzz_framing(stream, data):
    CASES["framing"] += 1
    dec = framing.FrameDecoder(max_frame=1000)
    try:
        for piece in chunks(stream, data.draw):
            for body in dec.receive_data(piece):
                assert len(body) <= 1000
    except framing.FramingError:
        pass


PID = Pid("a@127.0.0.1", 1, 0, 1)
REF = Reference("a@127.0.0.1", 1, (1, 2, 3))
CONTROLS = [
    (2, Atom(""), PID), (6, PID, Atom(""), Atom("name")), (1, PID, PID), (3, PID, PID, Atom("x")),
    (19, PID, PID, REF), (20, PID, PID, REF), (21, PID, PID, REF, Atom("normal")),
    (29, REF, PID, PID, (Atom("m"), Atom("f"), 1), [], [1]), (22, PID, Atom(""), PID, REF),
]


@FUZZ
@given(st.binary(max_size=300))
def test_fuzz_control_random(frame):
    CASES["control messages (random)"] += 1
    for candidate in (frame, b"p" + frame, b"p\x83" + frame):
        try:
            control.decode(candidate, max_inflated=1 << 20)
        except control.ControlError:
            pass


@FUZZ
@given(st.sampled_from(CONTROLS), terms, st.data())
def test_fuzz_control_mutated(ctrl, payload, data):
    CASES["control messages (mutated)"] += 1
    frame = b"p" + etf.encode(ctrl) + etf.encode(payload)
    memo = control.ControlMemo()
    for candidate in (frame, mutate(frame, data.draw)):
        try:
            control.decode(candidate, memo, max_inflated=1 << 20)
        except control.ControlError:
            pass


# --------------------------------------------------------------------------- sys.config

ERL_PIECES = st.sampled_from([
    "[", "]", "{", "}", "#{", "=>", ",", ".", " ", "\n", "%c\n", "kernel", "'q a'", "\"s\"",
    "<<", ">>", "<<\"b\">>", "1", "-", "2.5e3", "16#ff", "$a", "$\\n", "\\", "\"", "'", "|",
    "sync_nodes_optional", "net_ticktime", "['b@127.0.0.1']", "infinity", "X", "_", "1.", "e",
    "\t", "\\x{41}", "#", ":", "\x00", "é", "\U0001f600",
])
ERL_TEXT = st.one_of(st.text(max_size=120), st.lists(ERL_PIECES, max_size=40).map("".join))


@FUZZ
@given(ERL_TEXT)
def test_fuzz_erlterm(text):
    CASES["erlterm parser (file:consult text)"] += 1
    try:
        erlterm.parse_terms(text)
    except erlterm.TermError as e:
        assert str(e)


@FUZZ
@given(ERL_TEXT)
def test_fuzz_sys_config(text):
    CASES["sys.config parser"] += 1
    for candidate in (text, "[{kernel, [" + text + "]}]."):
        try:
            parse_sys_config(candidate)
        except ConfigError as e:
            assert str(e)


def test_deep_erlang_text_is_refused_cleanly():
    CASES["erlterm parser (deep nesting)"] += 1
    with pytest.raises(erlterm.TermError, match="nested"):
        erlterm.parse_terms("[" * 100_000 + "]" * 100_000 + ".")


# --------------------------------------------------------------------------- gossip

SECRET = "fuzz-secret"
GOSSIP_VALID = [gossip_wire.encode("a@127.0.0.1"), gossip_wire.encode("a@127.0.0.1", SECRET)]


def _gossip(packet, secret):
    try:
        node = gossip_wire.decode(packet, secret)
    except gossip_wire.BadHeartbeat as e:
        assert str(e) and "\n" not in str(e)
    else:
        assert type(node) is Atom


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_gossip_random(packet, with_secret):
    CASES["gossip packets (random)"] += 1
    _gossip(packet, SECRET if with_secret else None)
    _gossip(gossip_wire.PREFIX + packet, None)


@FUZZ
@given(st.sampled_from([0, 1]), st.data())
def test_fuzz_gossip_mutated(which, data):
    CASES["gossip packets (mutated)"] += 1
    _gossip(mutate(GOSSIP_VALID[which], data.draw), SECRET if which else None)
    # a plaintext heartbeat with another term in it, encrypted properly
    term = data.draw(terms)
    _gossip(gossip_wire.encrypt(gossip_wire.PREFIX + etf.encode(term), SECRET), SECRET)


# --------------------------------------------------------------------------- pg and PubSub

from clusterkit import pubsub  # noqa: E402
from clusterkit.runtime import pg as rpg  # noqa: E402
from clusterkit.runtime.atoms import DOWN, GEN_CAST  # noqa: E402


class _Proc:
    def __init__(self, pid, handler):
        self.pid, self.handler, self.alive = pid, handler, True


class FakeNode:
    """Just what a pg scope and a PubSub call on their node; sends are recorded."""

    atom = Atom("me@127.0.0.1")

    def __init__(self):
        self.sent, self.connections, self._n = [], {}, 0
        self.monitors: dict = {}

    def _next(self):
        self._n += 1
        return self._n

    def spawn_process(self, handler=None, label=""):
        return _Proc(Pid(self.atom, self._next(), 0, 1), handler)

    def register(self, name, pid):
        pass

    def add_node_hook(self, on_up=None, on_down=None):
        pass

    def nodes(self, kind="visible"):
        return []

    def send(self, dest, message, sender=None):
        self.sent.append((dest, message))

    def monitor(self, watcher, pid):
        ref = self._next() % 8            # small, so fuzzed DOWNs can name it
        self.monitors[ref] = pid
        return ref

    def make_ref(self):
        return Reference(self.atom, 1, (self._next(),))

    def local_process(self, pid):
        return None

    def deliver_local(self, proc, message):
        pass


PEERS = st.builds(Pid, st.sampled_from(["a@127.0.0.1", "b@127.0.0.1"]).map(Atom),
                  st.integers(1, 4), st.just(0), st.just(1))
PIDS = st.one_of(PEERS, st.lists(PEERS, max_size=3))
SMALL = st.recursive(st.one_of(st.integers(-2, 300), st.sampled_from(["", "t", b"\xff"]),
                              st.sampled_from(["x", "join", "leave"]).map(Atom), st.none()),
                     lambda inner: st.one_of(st.lists(inner, max_size=3),
                                             st.lists(inner, max_size=3).map(tuple),
                                             st.dictionaries(st.integers(0, 3), inner, max_size=2)),
                     max_leaves=6)
ANY = st.one_of(SMALL, PEERS, PIDS, st.integers(0, 8))
PG_MESSAGES = st.one_of(
    st.tuples(st.just(rpg.DISCOVER), st.one_of(PEERS, ANY)),
    st.tuples(st.just(rpg.JOIN), PEERS, ANY, st.one_of(PIDS, ANY)),
    st.tuples(st.just(rpg.LEAVE), PEERS, st.one_of(PIDS, ANY), st.one_of(st.lists(ANY, max_size=3), ANY)),
    st.tuples(st.just(GEN_CAST), st.tuples(st.just(rpg.SYNC), PEERS, st.lists(
        st.one_of(st.tuples(ANY, st.lists(PEERS, max_size=3)), ANY), max_size=4))),
    st.tuples(st.just(DOWN), st.integers(0, 8), st.just(Atom("process")), PEERS, ANY),
    ANY,
)


@FUZZ
@given(st.lists(PG_MESSAGES, min_size=1, max_size=12))
def test_fuzz_pg_scope_messages(messages):
    CASES["pg scope messages"] += 1
    scope = rpg.Scope(FakeNode(), Atom("fuzz_scope"))
    for m in messages:
        scope._handle(m)              # anything malformed is logged and ignored, never raised
    for group in scope.which_groups():
        assert all(isinstance(p, Pid) for p in scope.get_members(group))


PUBSUB_MESSAGES = st.one_of(
    st.tuples(st.just(pubsub.FORWARD_TO_LOCAL), ANY, ANY,
              st.one_of(st.just(pubsub.DEFAULT_DISPATCHER), ANY)),
    st.tuples(st.just(DOWN), ANY, st.just(Atom("process")), ANY, ANY),
    ANY,
)


@FUZZ
@given(st.lists(PUBSUB_MESSAGES, min_size=1, max_size=8), st.lists(ANY, max_size=3))
def test_fuzz_pubsub_messages(messages, topics):
    CASES["PubSub worker/registry messages"] += 1
    ps = pubsub._PubSub(FakeNode(), Atom("Elixir.Fuzz"), 1)
    for i, topic in enumerate(topics):
        ps.subscribe(Pid("me@127.0.0.1", 100 + i, 0, 1), topic, None)
    for m in messages:
        ps._worker_message(m)
        ps._registry_message(m)


def test_pubsub_regressions_the_fuzzer_found():
    # a list as dispatcher, and a DOWN naming a list: both raised TypeError before
    ps = pubsub._PubSub(FakeNode(), Atom("Elixir.Fuzz"), 1)
    ps.subscribe(Pid("me@127.0.0.1", 100, 0, 1), [], None)
    ps._worker_message((pubsub.FORWARD_TO_LOCAL, [], [], []))
    ps._registry_message((DOWN, 0, Atom("process"), [], []))
    assert ps.subscribers([]) == [Pid("me@127.0.0.1", 100, 0, 1)]


# --------------------------------------------------------------------------- DNS server

import logging  # noqa: E402  (kept beside the targets that need it)

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402
import dns.update  # noqa: E402
import dns.zone  # noqa: E402

from clusterkit.dns.authority import Authority  # noqa: E402

from conftest import LogLines  # noqa: E402

DNS_ZONE = """$ORIGIN lab.internal.
$TTL 5
@ IN SOA ns hostmaster 1 60 60 600 5
@ IN NS ns
ns IN A 127.0.0.1
a IN A 127.0.0.1
b IN A 127.0.0.2
nodes IN A 127.0.0.1
nodes IN A 127.0.0.2
_erl._tcp IN SRV 0 0 9000 a
"""


def _dns_valid_packets() -> list[bytes]:
    out = []
    for name, rdtype in (("nodes.lab.internal.", "A"), ("_erl._tcp.lab.internal.", "SRV"),
                         ("lab.internal.", "SOA"), ("2.0.0.127.in-addr.arpa.", "PTR"),
                         ("elsewhere.example.", "A"), ("lab.internal.", "AXFR")):
        out.append(dns.message.make_query(name, rdtype, use_edns=0).to_wire())
    add = dns.update.UpdateMessage("lab.internal.")
    add.present("a")
    add.add("c", 5, "A", "127.0.0.3")
    add.delete("b", "A")
    out.append(add.to_wire())
    gone = dns.update.UpdateMessage("lab.internal.")
    gone.absent("zz")
    gone.replace("nodes", 5, "A", "127.0.0.9")
    out.append(gone.to_wire())
    return out


DNS_VALID = _dns_valid_packets()


def _authority():
    zone = dns.zone.from_text(DNS_ZONE, origin="lab.internal.", relativize=False)
    return Authority([zone])


def _dns_target(wire: bytes, tcp: bool) -> None:
    """The server must answer (or drop) every packet without reaching its last-resort
    handler: an ERROR line there ("cannot answer ...") is a bug the fuzzer found."""
    auth = _authority()
    caught = LogLines()
    dns_log = logging.getLogger("clusterkit.dns")
    dns_log.addHandler(caught)
    old = dns_log.propagate
    dns_log.propagate = False
    try:
        reply = auth.handle(wire, "127.0.0.1", tcp=tcp)
    finally:
        dns_log.removeHandler(caught)
        dns_log.propagate = old
    assert not [line for line in caught.lines if line.startswith("ERROR")], caught.lines
    if reply is not None:
        assert isinstance(reply, bytes) and len(reply) >= 12
        if not tcp:
            assert len(reply) <= 65535
        dns.message.from_wire(reply)        # what it sends is itself valid DNS


@FUZZ
@given(st.binary(max_size=300), st.booleans())
def test_fuzz_dns_random(wire, tcp):
    CASES["DNS server (random bytes)"] += 1
    _dns_target(wire, tcp)


@FUZZ
@given(st.sampled_from(DNS_VALID), st.booleans(), st.data())
def test_fuzz_dns_mutated(valid, tcp, data):
    CASES["DNS server queries and updates (mutated)"] += 1
    _dns_target(mutate(valid, data.draw), tcp)


# --------------------------------------------------------------------------- DistConnection

from clusterkit.dist.connection import (DistConnection, PeerSilent,  # noqa: E402
                                        ProtocolError, Role, SetupTimeout, Up)

def _dc_pair():
    a = DistConnection(Role.INITIATOR, "a@127.0.0.1", 1, now=0.0, peer_node="b@127.0.0.1",
                       cookie=COOKIE, net_ticktime=4, challenge=11)
    b = DistConnection(Role.ACCEPTOR, "b@127.0.0.1", 2, now=0.0, net_ticktime=4, challenge=22)
    return a, b


def _dc_honest_streams():
    """A whole honest session: each side's handshake bytes, then a few messages from the
    initiator (a send, a link, a monitor, a reg_send with a big payload, a tick)."""
    a, b = _dc_pair()
    to_b = bytearray()
    to_a = bytearray()
    for _ in range(6):
        data = a.data_to_send()
        to_b += data
        for ev in b.receive_data(data, 0.0) if data else []:
            if isinstance(ev, hs.NameReceived):
                b.accept(COOKIE)
        data = b.data_to_send()
        to_a += data
        if data:
            a.receive_data(data, 0.0)
    assert a.up and b.up
    me, peer = Pid(Atom("a@127.0.0.1"), 1, 0, 1), Pid(Atom("b@127.0.0.1"), 7, 0, 2)
    for body in (control.send_frame(peer, ("hello", [1, 2.5])),
                 control.reg_send_frame(me, "inbox", b"x" * 300),
                 control.link_frame(me, peer),
                 control.monitor_frame(me, peer, Reference(Atom("a@127.0.0.1"), 1, (1, 2, 3)))):
        a.send(body)
    to_b += a.data_to_send() + b"\x00\x00\x00\x00"
    return bytes(to_b), bytes(to_a)


def _drive_connection(conn: DistConnection, stream: bytes, draw) -> None:
    """Feed stream in pieces with the clock moving, deciding as the runtime does; no
    exception may escape, and once it says the connection is over it stays closed."""
    now = 0.0
    over = False
    for piece in chunks(stream, draw):
        if draw(st.booleans()):
            now += draw(st.sampled_from([0.0, 0.5, 1.0, 3.0, 8.0]))
            for ev in conn.on_timer(now, writes=draw(st.integers(0, 3))):
                assert isinstance(ev, (SetupTimeout, PeerSilent)), ev
                over = True
        events = conn.receive_data(piece, now)
        if over:
            assert events == [], events
        for ev in events:
            if isinstance(ev, (hs.Failed, ProtocolError)):
                over = True
            elif isinstance(ev, hs.NameReceived):
                choice = draw(st.sampled_from(["accept", "alive", "reject"]))
                if choice == "accept":
                    conn.accept(COOKIE)
                elif choice == "alive":
                    conn.ask_alive(COOKIE)
                else:
                    over = any(isinstance(e, hs.Failed) for e in conn.reject("not_allowed"))
            elif isinstance(ev, hs.AliveQuery):
                conn.answer_alive(draw(st.booleans()))
        conn.data_to_send()
        if over:
            assert conn.next_timer() is None
    lost = conn.connection_lost()
    assert lost is None or isinstance(lost, hs.Failed)
    assert conn.next_timer() is None


DC_TO_ACCEPTOR, DC_TO_INITIATOR = _dc_honest_streams()


@FUZZ
@given(st.binary(max_size=400), st.booleans(), st.data())
def test_fuzz_dist_connection_random(stream, acceptor, data):
    CASES["DistConnection (random bytes, clock moving)"] += 1
    _drive_connection(_dc_pair()[1 if acceptor else 0], stream, data.draw)


@FUZZ
@given(st.booleans(), st.data())
def test_fuzz_dist_connection_mutated(acceptor, data):
    CASES["DistConnection whole sessions (mutated, clock moving)"] += 1
    honest = DC_TO_ACCEPTOR if acceptor else DC_TO_INITIATOR
    _drive_connection(_dc_pair()[1 if acceptor else 0], mutate(honest, data.draw), data.draw)


def test_dist_connection_honest_session_is_clean():
    # Unmutated, the recorded session reaches Up and yields its four messages.
    b = _dc_pair()[1]
    events = []
    for i in range(len(DC_TO_ACCEPTOR)):            # a byte at a time
        got = b.receive_data(DC_TO_ACCEPTOR[i:i + 1], 0.0)
        if any(isinstance(e, hs.NameReceived) for e in got):
            b.accept(COOKIE)
        events += got
    kinds = [type(e).__name__ for e in events]
    assert "Up" in kinds and kinds[-4:] == ["Send", "RegSend", "Link", "Monitor"], kinds
