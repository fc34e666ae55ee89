%% The erl side of clusterkit's benchmarks: an agent that runs whole measuring loops.
%%
%% benchmarks/harness.py compiles this module into a temporary directory and starts
%% `erl -noshell -name N -setcookie C -pa Dir -s ckbench agent`. The agent reads one
%% command per line on stdin (an Erlang term ending in a dot), runs it, and prints
%% "@@R " followed by base64(term_to_binary(Result)). Only the commands are sent over
%% stdin, never one per message: every loop below runs here, compiled.
-module(ckbench).
-export([agent/0, echo_loop/0, sink_loop/0]).

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
