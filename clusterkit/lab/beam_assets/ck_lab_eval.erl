%% The evaluator of a real erl/elixir lab node (see clusterkit/lab/beam.py).
%%
%% The lab talks to it over an inherited socket (fd in CK_LAB_FD), one
%% {packet, 4} frame per term_to_binary message:
%%   lab -> node: {eval, Id, CodeBinary} | {abort, Id} | stop
%%   node -> lab: {ready, node()} | {reply, Id, ok | error, Printed, Text}
%% stdout stays the node's own log (logger, io from background processes).
%%
%% Code runs in one long-lived evaluator process, as in iex and erl's shell, so
%% self() and the mailbox stay the same from cell to cell. Its group leader is an
%% io server that keeps what is printed while a cell runs, and passes everything
%% else on to the node's stdout.
-module(ck_lab_eval).
-export([main/1]).

main(Lang) ->
    Fd = list_to_integer(os:getenv("CK_LAB_FD")),
    Port = open_port({fd, Fd, Fd}, [binary, {packet, 4}, eof]),
    process_flag(trap_exit, true),
    Out = group_leader(),
    Io = spawn_link(fun() -> io_loop(Out, undefined, []) end),
    State = initial_state(Lang),
    send_port(Port, {ready, node()}),
    loop(#{port => Port, lang => Lang, io => Io, state => State,
           evaluator => start_evaluator(Lang, Io, State), busy => none}).

send_port(Port, Term) ->
    port_command(Port, term_to_binary(Term)).

loop(#{port := Port, io := Io} = S) ->
    receive
        {Port, {data, Bin}} ->
            loop(request(binary_to_term(Bin), S));
        {Port, eof} ->
            erlang:halt(0);
        {done, Id, Status, Text, NewState} ->
            #{busy := Id} = S,
            Printed = take_output(Io),
            send_port(Port, {reply, Id, Status, Printed, Text}),
            loop(S#{state := NewState, busy := none});
        {'EXIT', Pid, Reason} when Pid =:= map_get(evaluator, S) ->
            %% The evaluator itself died (exit/1 from a cell, a link): report it and
            %% start a new one, as iex does.
            S1 = S#{evaluator := start_evaluator(map_get(lang, S), Io, map_get(state, S))},
            case S of
                #{busy := none} -> loop(S1);
                #{busy := Id} ->
                    Printed = take_output(Io),
                    Text = format_exit(map_get(lang, S), Reason),
                    send_port(Port, {reply, Id, error, Printed, Text}),
                    loop(S1#{busy := none})
            end;
        {'EXIT', _, _} ->
            loop(S)
    end.

request({eval, Id, Code}, #{busy := none, io := Io, evaluator := Ev} = S) ->
    Io ! {capture, self()},
    receive {capturing, Io} -> ok end,
    Ev ! {eval, self(), Id, Code},
    S#{busy := Id};
request({eval, Id, _Code}, #{port := Port} = S) ->
    send_port(Port, {reply, Id, error, <<>>, <<"** the node is still running another cell">>}),
    S;
request({abort, Id}, #{busy := Id, port := Port, io := Io, evaluator := Ev} = S) ->
    unlink(Ev),
    exit(Ev, kill),
    Printed = take_output(Io),
    send_port(Port, {reply, Id, error, Printed, <<"** (aborted) the cell took too long and was stopped">>}),
    S#{evaluator := start_evaluator(map_get(lang, S), Io, map_get(state, S)), busy := none};
request({abort, _}, S) ->
    S;
request(stop, _S) ->
    init:stop(),
    receive after infinity -> ok end.

take_output(Io) ->
    Io ! {take, self()},
    receive {output, Io, Bin} -> Bin end.

%% --- the evaluator ---------------------------------------------------------------

start_evaluator(Lang, Io, State) ->
    spawn_link(fun() ->
        group_leader(Io, self()),
        evaluator(Lang, State)
    end).

evaluator(Lang, State) ->
    receive
        {eval, From, Id, Code} ->
            {Status, Text, NewState} =
                try eval(Lang, Code, State) of
                    {Value, State1} -> {ok, format_value(Lang, Value), State1}
                catch
                    Class:Reason:Stack -> {error, format_error(Lang, Class, Reason, Stack), State}
                end,
            From ! {done, Id, Status, Text, NewState},
            evaluator(Lang, NewState)
    end.

initial_state(elixir) ->
    %% What iex imports, so that flush(), h() and friends work as in iex.
    {Env, _} = 'Elixir.Code':eval_string(<<"import IEx.Helpers, warn: false; __ENV__">>, [],
                                         [{file, <<"iex">>}]),
    {[], Env};
initial_state(erlang) ->
    erl_eval:new_bindings().

eval(elixir, Code, {Binding, Env}) ->
    Quoted = 'Elixir.Code':'string_to_quoted!'(Code, [{file, <<"iex">>}, {line, 1}]),
    {Value, Binding1, Env1} = 'Elixir.Code':eval_quoted_with_env(Quoted, Binding, Env),
    {Value, {Binding1, Env1}};
eval(erlang, Code, Bindings) ->
    Text = unicode:characters_to_list(Code),
    Full = case lists:reverse(string:trim(Text, trailing)) of
               [$. | _] -> Text;
               _ -> Text ++ "."
           end,
    {ok, Tokens, _} = case erl_scan:string(Full) of
                          {ok, _, _} = Ok -> Ok;
                          {error, {L, M, D}, _} -> throw({ck_syntax, L, M, D})
                      end,
    Exprs = case erl_parse:parse_exprs(Tokens) of
                {ok, E} -> E;
                {error, {L2, M2, D2}} -> throw({ck_syntax, L2, M2, D2})
            end,
    {value, Value, Bindings1} = erl_eval:exprs(Exprs, Bindings, {value, fun shell_local/2}),
    {Value, Bindings1}.

%% The erl shell's own commands that lessons use.
shell_local(flush, []) ->
    flush_messages();
shell_local(self, []) ->
    self();
shell_local(Name, Args) ->
    erlang:raise(error, undef, [{shell_default, Name, Args, []}]).

flush_messages() ->
    receive
        M -> io:format("Shell got ~tp~n", [M]), flush_messages()
    after 0 -> ok
    end.

format_value(elixir, Value) ->
    'Elixir.Kernel':inspect(Value, [{pretty, true}, {width, 80}]);
format_value(erlang, Value) ->
    unicode:characters_to_binary(io_lib:format("~tp", [Value])).

format_error(elixir, Class, Reason, Stack) ->
    'Elixir.Exception':format_banner(Class, Reason, Stack);
format_error(erlang, throw, {ck_syntax, L, M, D}, _) ->
    unicode:characters_to_binary(io_lib:format("* ~p: ~ts", [L, M:format_error(D)]));
format_error(erlang, Class, Reason, _Stack) ->
    Text = erl_error:format_exception(Class, Reason, []),
    unicode:characters_to_binary(["** ", string:trim(Text, trailing)]).

format_exit(elixir, Reason) ->
    'Elixir.Exception':format_banner({'EXIT', self()}, Reason, []);
format_exit(erlang, Reason) ->
    unicode:characters_to_binary(io_lib:format("** exception exit: ~tp", [Reason])).

%% --- the io server -----------------------------------------------------------------
%% Captured output goes to the cell (Into is the lab loop); anything else goes on to
%% the node's own stdout.

io_loop(Out, Into, Acc) ->
    receive
        {capture, From} ->
            From ! {capturing, self()},
            io_loop(Out, From, []);
        {take, From} ->
            From ! {output, self(), unicode:characters_to_binary(lists:reverse(Acc))},
            io_loop(Out, undefined, []);
        {io_request, From, ReplyAs, Request} ->
            {Reply, Chars} = io_request(Request),
            From ! {io_reply, ReplyAs, Reply},
            case {iolist_size(Chars), Into} of
                {0, _} -> io_loop(Out, Into, Acc);
                {_, undefined} -> io:put_chars(Out, Chars), io_loop(Out, Into, Acc);
                _ -> io_loop(Out, Into, [Chars | Acc])
            end;
        _ ->
            io_loop(Out, Into, Acc)
    end.

io_request({put_chars, Enc, Chars}) ->
    {ok, chars(Chars, Enc)};
io_request({put_chars, Enc, M, F, A}) ->
    {ok, chars(apply(M, F, A), Enc)};
io_request({put_chars, Chars}) ->
    {ok, chars(Chars, latin1)};
io_request({put_chars, M, F, A}) ->
    {ok, chars(apply(M, F, A), latin1)};
io_request({requests, Requests}) ->
    lists:foldl(fun(R, {_, Acc}) ->
                        {Reply, C} = io_request(R),
                        {Reply, [Acc, C]}
                end, {ok, []}, Requests);
io_request({setopts, _}) ->
    {ok, []};
io_request(getopts) ->
    {[{binary, false}, {encoding, unicode}], []};
io_request({get_geometry, _}) ->
    {{error, enotsup}, []};
io_request(_) ->
    %% Reading: a lab cell has no keyboard.
    {eof, []}.

chars(Chars, Enc) ->
    case unicode:characters_to_binary(Chars, Enc, unicode) of
        Bin when is_binary(Bin) -> Bin;
        _ -> unicode:characters_to_binary(io_lib:format("~tp", [Chars]))
    end.
