#!/usr/bin/env escript
%% For each hex argument: binary_to_term it, then print one line,
%% "ok <hex of term_to_binary of the result>" or "badarg".
%% tests/test_etf_hardening.py asks real Erlang what it accepts with this.
-mode(compile).

main(Args) ->
    lists:foreach(fun check/1, Args).

check(Hex) ->
    Bin = binary:decode_hex(list_to_binary(Hex)),
    try binary_to_term(Bin) of
        T -> io:format("ok ~s~n", [binary:encode_hex(term_to_binary(T))])
    catch error:badarg -> io:format("badarg~n")
    end.
