#!/usr/bin/env escript
%% libcluster Gossip's heartbeat, written from its wire description with OTP's own
%% crypto and term_to_binary, to check clusterkit's against it.
%%
%%   encode Node Secret|- Minor   -> hex of the datagram (minor_version 1 = OTP 25 atoms)
%%   decode Hex Secret|-          -> the node name in it, or "error:Reason"
%%   plain Node                   -> hex of term_to_binary(#{node => N}, [{minor_version, 2}])
%%   peer Name Cookie Port Group Secret|- [MaxMs]
%%        a distributed node that gossips like libcluster on 127.0.0.1 (a heartbeat at once,
%%        then every rand:uniform(MaxMs) ms, default 300) and connects to every node it
%%        hears; prints "heard N" (once per node) and "nodeup N" lines; ends when stdin closes.
-mode(compile).

main(["encode", Node, Secret, Minor]) ->
    Plain = plain(list_to_atom(Node), list_to_integer(Minor)),
    io:format("~s~n", [hex(packet(Plain, secret(Secret)))]);
main(["decode", Hex, Secret]) ->
    case decode(binary:decode_hex(list_to_binary(Hex)), secret(Secret)) of
        {ok, N} -> io:format("~s~n", [N]);
        {error, R} -> io:format("error:~p~n", [R])
    end;
main(["plain", Node]) ->
    io:format("~s~n", [hex(term_to_binary(#{node => list_to_atom(Node)}, [{minor_version, 2}]))]);
main(["peer", Name, Cookie, Port, Group, Secret]) ->
    main(["peer", Name, Cookie, Port, Group, Secret, "300"]);
main(["peer", Name, Cookie, Port, Group, Secret, Max]) ->
    peer(list_to_atom(Name), list_to_atom(Cookie), list_to_integer(Port),
         parse_ip(Group), secret(Secret), list_to_integer(Max)).

secret("-") -> nil;
secret(S) -> list_to_binary(S).

plain(Node, Minor) ->
    <<"heartbeat::", (term_to_binary(#{node => Node}, [{minor_version, Minor}]))/binary>>.

packet(Plain, nil) -> Plain;
packet(Plain, Secret) ->
    IV = crypto:strong_rand_bytes(16),
    Key = crypto:hash(sha256, Secret),
    Pad = 16 - byte_size(Plain) rem 16,
    Padded = <<Plain/binary, (binary:copy(<<Pad>>, Pad))/binary>>,
    <<IV/binary, (crypto:crypto_one_time(aes_256_cbc, Key, IV, Padded, true))/binary>>.

decode(Packet, nil) -> heartbeat(Packet);
decode(<<IV:16/binary, Cipher/binary>>, Secret) when byte_size(Cipher) rem 16 =:= 0,
                                                      byte_size(Cipher) > 0 ->
    Key = crypto:hash(sha256, Secret),
    Padded = crypto:crypto_one_time(aes_256_cbc, Key, IV, Cipher, false),
    Pad = binary:last(Padded),
    Size = byte_size(Padded) - Pad,
    case Pad >= 1 andalso Pad =< 16 andalso
         binary:part(Padded, Size, Pad) =:= binary:copy(<<Pad>>, Pad) of
        true -> heartbeat(binary:part(Padded, 0, Size));
        false -> {error, padding}
    end;
decode(_, _) -> {error, size}.

heartbeat(<<"heartbeat::", Rest/binary>>) ->
    try binary_to_term(Rest) of
        #{node := N} when is_atom(N) -> {ok, N};
        _ -> {error, term}
    catch _:_ -> {error, badterm}
    end;
heartbeat(_) -> {error, prefix}.

hex(B) -> string:lowercase(binary:encode_hex(B)).

parse_ip(S) -> {ok, A} = inet:parse_ipv4_address(S), A.

peer(Name, Cookie, Port, Group, Secret, Max) ->
    {ok, _} = net_kernel:start([Name, longnames]),
    erlang:set_cookie(node(), Cookie),
    ok = net_kernel:monitor_nodes(true),
    %% libcluster's options, with the loopback interface for one machine.
    {ok, S} = gen_udp:open(Port, [binary, {active, true}, {ip, {0, 0, 0, 0}},
                                  {reuseaddr, true}, {broadcast, true},
                                  {multicast_if, {127, 0, 0, 1}}, {multicast_ttl, 1},
                                  {multicast_loop, true},
                                  {add_membership, {Group, {127, 0, 0, 1}}}]),
    Self = self(),
    spawn_link(fun() -> io:get_line(""), Self ! stop end),
    io:format("ready ~s~n", [node()]),
    self() ! beat,
    loop(S, Group, Port, Secret, Max, #{}).

loop(S, Group, Port, Secret, Max, Heard) ->
    receive
        beat ->
            ok = gen_udp:send(S, Group, Port, packet(plain(node(), 2), Secret)),
            erlang:send_after(rand:uniform(Max), self(), beat),
            loop(S, Group, Port, Secret, Max, Heard);
        {udp, S, _Ip, _P, Packet} ->
            case decode(Packet, Secret) of
                {ok, N} when N =/= node() ->
                    maps:is_key(N, Heard) orelse io:format("heard ~s~n", [N]),
                    %% libcluster: connect unless already connected
                    lists:member(N, nodes(connected)) orelse net_kernel:connect_node(N),
                    loop(S, Group, Port, Secret, Max, Heard#{N => true});
                _ -> loop(S, Group, Port, Secret, Max, Heard)
            end;
        {nodeup, N} -> io:format("nodeup ~s~n", [N]), loop(S, Group, Port, Secret, Max, Heard);
        {nodedown, N} -> io:format("nodedown ~s~n", [N]), loop(S, Group, Port, Secret, Max, Heard);
        stop -> halt(0)
    end.
