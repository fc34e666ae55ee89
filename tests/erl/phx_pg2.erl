%% A stand-in for Phoenix.PubSub's PG2 adapter (phoenix_pubsub 2.x), for tests without hex.
%% It does what the adapter does on the wire: one worker per PubSub, registered under the
%% adapter's group atom ('Elixir.<name>.Adapter') and joined to that group in the pg scope
%% 'Elixir.Phoenix.PubSub'. A broadcast sends {forward_to_local, Topic, Msg, Dispatcher}
%% to every member on another node and dispatches here; the worker dispatches what it is
%% forwarded. Subscribers live in the worker's state instead of a Registry.
-module(phx_pg2).
-export([start/1, subscribe/2, broadcast/3, broadcast_from/4, direct_broadcast/4,
         adapter/1, members/1]).

-define(SCOPE, 'Elixir.Phoenix.PubSub').
-define(DISPATCHER, 'Elixir.Phoenix.PubSub').

adapter(Name) -> list_to_atom("Elixir." ++ atom_to_list(Name) ++ ".Adapter").

members(Name) -> lists:sort(pg:get_members(?SCOPE, adapter(Name))).

start(Name) ->
    case whereis(?SCOPE) of
        undefined -> {ok, _} = pg:start(?SCOPE);
        _ -> ok
    end,
    Group = adapter(Name),
    Parent = self(),
    Pid = spawn(fun() ->
                        true = register(Group, self()),
                        ok = pg:join(?SCOPE, Group, self()),
                        Parent ! {ready, self()},
                        loop([])
                end),
    receive {ready, Pid} -> {ok, Pid} after 5000 -> {error, timeout} end.

loop(Subs) ->
    receive
        {subscribe, Pid, Topic} ->
            Pid ! {subscribed, self()},
            loop(Subs ++ [{Topic, Pid}]);
        {forward_to_local, Topic, Msg, ?DISPATCHER} ->
            dispatch(Subs, Topic, Msg, none),
            loop(Subs);
        {local, Topic, Msg, From} ->
            dispatch(Subs, Topic, Msg, From),
            loop(Subs);
        _ ->
            loop(Subs)
    end.

dispatch(Subs, Topic, Msg, From) ->
    [Pid ! Msg || {T, Pid} <- Subs, T =:= Topic, Pid =/= From],
    ok.

subscribe(Name, Topic) ->
    adapter(Name) ! {subscribe, self(), Topic},
    receive {subscribed, _} -> ok after 5000 -> timeout end.

broadcast(Name, Topic, Msg) -> broadcast_from(Name, none, Topic, Msg).

broadcast_from(Name, From, Topic, Msg) ->
    Group = adapter(Name),
    Forward = {forward_to_local, Topic, Msg, ?DISPATCHER},
    [Pid ! Forward || Pid <- pg:get_members(?SCOPE, Group), node(Pid) =/= node()],
    Group ! {local, Topic, Msg, From},
    ok.

direct_broadcast(Node, Name, Topic, Msg) ->
    {adapter(Name), Node} ! {forward_to_local, Topic, Msg, ?DISPATCHER},
    ok.
