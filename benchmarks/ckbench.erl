%% The erl side of clusterkit's benchmarks: an agent that runs whole measuring loops.
%%
%% benchmarks/harness.py compiles this module into a temporary directory and starts
%% `erl -noshell -name N -setcookie C -pa Dir -s ckbench agent`. The agent reads one
%% command per line on stdin (an Erlang term ending in a dot), runs it, and prints
%% "@@R " followed by base64(term_to_binary(Result)). Only the commands are sent over
%% stdin, never one per message: every loop below runs here, compiled.
-module(ckbench).
-export([agent/0, echo_loop/0, sink_loop/0, ps_worker/1, ps_subscriber/2]).

%% PubSub (see ps_start below)
-define(PS_SCOPE, 'Elixir.Phoenix.PubSub').
-define(PS_GROUP, 'Elixir.bench.Adapter').
-define(PS_TABLE, ckbench_ps_subscribers).

agent() ->
    io:format("@@READY~n"),
    loop().

loop() ->
    case io:get_line("") of
        eof -> halt();
        {error, _} -> halt();
        Line ->
            Result = try
                         {ok, Toks, _} = erl_scan:string(Line),
                         {ok, Term} = erl_parse:parse_term(Toks),
                         handle(Term)
                     catch C:E:S -> {error, {C, E, S}}
                     end,
            reply(Result),
            loop()
    end.

reply(R) ->
    io:format("@@R ~s~n", [base64:encode(term_to_binary(R))]).

now_ns() -> erlang:monotonic_time(nanosecond).

handle(halt) -> halt();
handle(node) -> node();
handle(echo_server) ->
    register(echo, spawn(fun ?MODULE:echo_loop/0)),
    ok;
handle(sink_server) ->
    register(sink, spawn(fun ?MODULE:sink_loop/0)),
    ok;
handle({ping, Node}) ->
    net_adm:ping(Node);
handle({rtt, Node, N}) ->
    rtt({echo, Node}, 0, N, [], 0);
handle({tput, Node, N}) ->
    tput({sink, Node}, N, <<"x">>);
handle({tput, Node, N, Size}) ->
    tput({sink, Node}, N, binary:copy(<<"x">>, Size));
handle({connect, Node}) ->
    T0 = now_ns(),
    R = net_adm:ping(Node),
    {R, now_ns() - T0};
handle({reconnect, Node, PauseMs}) ->
    erlang:disconnect_node(Node),
    wait_gone(Node, 200),
    timer:sleep(PauseMs),
    T0 = now_ns(),
    R = net_adm:ping(Node),
    {R, now_ns() - T0};
handle({watch, Node}) ->
    ok = net_kernel:monitor_nodes(true),
    pong = net_adm:ping(Node),
    reply(armed),
    receive
        {nodedown, Node} -> {down, os:system_time(nanosecond)}
    after 60000 -> timeout
    end;
handle(ps_start) ->
    ps_start();
handle(ps_members) ->
    length(pg:get_members(?PS_SCOPE, ?PS_GROUP));
handle({ps_subs, Topic, K, PubNode}) ->
    [ps_subscribe(Topic, PubNode) || _ <- lists:seq(1, K)],
    ok;
handle({ps_tput, Topic, N, K}) ->
    ps_register(),
    T0 = now_ns(),
    [ps_broadcast(Topic, {tp, I, N}) || I <- lists:seq(1, N)],
    ps_collect_done(K, T0, 0, 0);
handle({ps_lat, Topic, M, K}) ->
    ps_register(),
    {ok, list_to_binary([<<(ps_lat_one(Topic, I, K)):64>> || I <- lists:seq(1, M)])};
handle({codec, Bin, Iters}) ->
    Term = binary_to_term(Bin),
    T0 = now_ns(),
    Iters = dec_loop(Bin, Iters, 0),
    T1 = now_ns(),
    Bytes = enc_loop(Term, Iters, 0),
    T2 = now_ns(),
    {T1 - T0, T2 - T1, Bytes div Iters}.

%% Round trips: {From, I} to the echo process, which answers {echo, I}.
rtt(_Dest, N, N, Acc, Errors) ->
    {ok, list_to_binary(lists:reverse(Acc)), Errors};
rtt(Dest, I, N, Acc, Errors) ->
    T0 = now_ns(),
    Dest ! {self(), I},
    receive
        Reply ->
            T = now_ns() - T0,
            E = case Reply of {echo, I} -> Errors; _ -> Errors + 1 end,
            rtt(Dest, I + 1, N, [<<T:64>> | Acc], E)
    after 10000 ->
            {lost, I, Errors}
    end.

echo_loop() ->
    receive
        {From, I} -> From ! {echo, I};
        _ -> ok
    end,
    echo_loop().

%% One-way throughput: {start, From, N}, then N x {msg, I, <<"x...">>} (1 byte or Size); the sink answers
%% {done, Count, OutOfOrder} once it has N messages.
tput(Dest, N, Payload) ->
    T0 = now_ns(),
    Dest ! {start, self(), N},
    send_loop(Dest, 1, N, Payload),
    receive
        {done, Count, Errors} -> {ok, now_ns() - T0, Count, Errors}
    after 120000 -> {timeout, now_ns() - T0}
    end.

send_loop(_Dest, I, N, _Payload) when I > N -> ok;
send_loop(Dest, I, N, Payload) ->
    Dest ! {msg, I, Payload},
    send_loop(Dest, I + 1, N, Payload).

sink_loop() ->
    receive
        {start, From, N} -> count(From, N, 0, 0)
    end,
    sink_loop().

count(From, N, N, Errors) ->
    From ! {done, N, Errors};
count(From, N, Got, Errors) ->
    receive
        {msg, I, <<"x", _/binary>>} when I =:= Got + 1 -> count(From, N, Got + 1, Errors);
        {msg, _, _} -> count(From, N, Got + 1, Errors + 1)
    end.

wait_gone(_Node, 0) -> ok;
wait_gone(Node, K) ->
    case lists:member(Node, nodes()) of
        true -> timer:sleep(5), wait_gone(Node, K - 1);
        false -> ok
    end.

%% The results are used (counted), or the compiler drops the pure calls altogether.
dec_loop(_Bin, 0, Acc) -> Acc;
dec_loop(Bin, K, Acc) ->
    T = binary_to_term(Bin),
    dec_loop(Bin, K - 1, Acc + case T of [] -> 0; _ -> 1 end).

enc_loop(_Term, 0, Acc) -> Acc;
enc_loop(Term, K, Acc) -> enc_loop(Term, K - 1, Acc + byte_size(term_to_binary(Term))).

%% PubSub: Phoenix.PubSub's PG2 adapter, as it runs on an Elixir node, for the same
%% workload as clusterkit's PubSub: a pg scope 'Elixir.Phoenix.PubSub', one worker per
%% node registered under the adapter group and joined to it, subscribers in an ETS
%% duplicate bag (Phoenix keeps them in a Registry, which is one), a broadcast that sends
%% {forward_to_local, ...} to each remote worker and dispatches locally.

ps_start() ->
    case whereis(?PS_SCOPE) of
        undefined -> {ok, _} = pg:start(?PS_SCOPE);
        _ -> ok
    end,
    Parent = self(),
    spawn(fun() -> ?MODULE:ps_worker(Parent) end),
    receive ps_ready -> ok after 5000 -> timeout end.

ps_worker(Parent) ->
    ?PS_TABLE = ets:new(?PS_TABLE, [duplicate_bag, public, named_table,
                                    {read_concurrency, true}]),
    true = register(?PS_GROUP, self()),
    ok = pg:join(?PS_SCOPE, ?PS_GROUP, self()),
    Parent ! ps_ready,
    ps_worker_loop().

ps_worker_loop() ->
    receive
        {forward_to_local, Topic, Msg, _Dispatcher} -> ps_dispatch(Topic, Msg);
        _ -> ok
    end,
    ps_worker_loop().

ps_dispatch(Topic, Msg) ->
    [Pid ! Msg || {_, Pid} <- ets:lookup(?PS_TABLE, Topic)],
    ok.

ps_broadcast(Topic, Msg) ->
    Forward = {forward_to_local, Topic, Msg, 'Elixir.Phoenix.PubSub'},
    Me = node(),
    [Pid ! Forward || Pid <- pg:get_members(?PS_SCOPE, ?PS_GROUP), node(Pid) =/= Me],
    ps_dispatch(Topic, Msg).

ps_subscribe(Topic, PubNode) ->
    Parent = self(),
    spawn(fun() ->
                  true = ets:insert(?PS_TABLE, {Topic, self()}),
                  Parent ! {subscribed, self()},
                  ?MODULE:ps_subscriber({bench_pub, PubNode}, 0)
          end),
    receive {subscribed, _} -> ok after 5000 -> timeout end.

%% {tp, I, N}: count in order; at N, report {done, Got, Errors}. {lat, I}: ack at once.
ps_subscriber(Pub, Got) ->
    ps_subscriber(Pub, Got, 0).
ps_subscriber(Pub, Got, Errors) ->
    receive
        {tp, I, N} ->
            E = if I =:= Got + 1 -> Errors; true -> Errors + 1 end,
            case I of
                N -> Pub ! {done, Got + 1, E}, ps_subscriber(Pub, 0, 0);
                _ -> ps_subscriber(Pub, Got + 1, E)
            end;
        {lat, I} ->
            Pub ! {ack, I},
            ps_subscriber(Pub, Got, Errors)
    end.

ps_register() ->
    case whereis(bench_pub) of
        undefined -> register(bench_pub, self());
        _ -> true
    end.

ps_collect_done(0, T0, Got, Errors) -> {ok, now_ns() - T0, Got, Errors};
ps_collect_done(K, T0, Got, Errors) ->
    receive
        {done, G, E} -> ps_collect_done(K - 1, T0, Got + G, Errors + E)
    after 120000 -> {timeout, K}
    end.

ps_lat_one(Topic, I, K) ->
    T0 = now_ns(),
    ps_broadcast(Topic, {lat, I}),
    ps_acks(I, K),
    now_ns() - T0.

ps_acks(_I, 0) -> ok;
ps_acks(I, K) ->
    receive {ack, I} -> ps_acks(I, K - 1) after 10000 -> exit({lost_ack, I}) end.
