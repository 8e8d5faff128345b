%% Reads the part of HOCON that priv/config.hocon is written in, into the map EMQX's hocon library
%% gives (binary keys; strings as binaries): objects with `key = value`, `key: value` or
%% `key { ... }` (dotted keys nest), arrays, double-quoted strings, unquoted words, integers,
%% true/false, and # or // comments. Anything else is an error, so the file stays in that part.
%% EMQX's hocon library is not on this machine; the tests read the shipped defaults with this.
-module(erh_hocon).

-export([file/1, binary/1]).

file(Path) ->
    {ok, Bin} = file:read_file(Path),
    binary(Bin).

binary(Bin) ->
    {Map, Rest} = fields(skip(Bin), #{}, eof),
    <<>> = skip(Rest),
    Map.

%% Fields until Close (the closing brace, or eof at the top level).
fields(<<"}", Rest/binary>>, Acc, $}) ->
    {Acc, Rest};
fields(<<>>, Acc, eof) ->
    {Acc, <<>>};
fields(Bin, Acc, Close) ->
    {Key, Rest1} = word(Bin),
    {Value, Rest2} = case skip_blanks(Rest1) of
                         <<"{", _/binary>> = Obj -> value(Obj);
                         <<Sep, Rest/binary>> when Sep =:= $=; Sep =:= $: -> value(skip_blanks(Rest))
                     end,
    Path = binary:split(Key, <<".">>, [global]),
    fields(separator(Rest2), deep_put(Path, Value, Acc), Close).

value(<<"{", Rest/binary>>) ->
    fields(skip(Rest), #{}, $});
value(<<"[", Rest/binary>>) ->
    elements(skip(Rest), []);
value(<<"\"", Rest/binary>>) ->
    quoted(Rest, <<>>);
value(Bin) ->
    {Word, Rest} = word(Bin),
    {scalar(Word), Rest}.

elements(<<"]", Rest/binary>>, Acc) ->
    {lists:reverse(Acc), Rest};
elements(Bin, Acc) ->
    {Value, Rest} = value(Bin),
    elements(separator(Rest), [Value | Acc]).

quoted(<<"\\", C, Rest/binary>>, Acc) ->
    quoted(Rest, <<Acc/binary, (unescape(C))>>);
quoted(<<"\"", Rest/binary>>, Acc) ->
    {Acc, Rest};
quoted(<<C, Rest/binary>>, Acc) when C =/= $\n ->
    quoted(Rest, <<Acc/binary, C>>).

unescape($n) -> $\n;
unescape($t) -> $\t;
unescape(C) when C =:= $"; C =:= $\\; C =:= $/ -> C.

scalar(<<"true">>) -> true;
scalar(<<"false">>) -> false;
scalar(Word) ->
    case re:run(Word, <<"^-?[0-9]+$">>, [{capture, none}]) of
        match -> binary_to_integer(Word);
        nomatch -> Word
    end.

%% An unquoted word: up to whitespace or a character HOCON reserves.
word(Bin) ->
    {match, [{0, Len}]} = re:run(Bin, <<"^[^\\s\"{}\\[\\],:=#]+">>),
    <<Word:Len/binary, Rest/binary>> = Bin,
    {Word, Rest}.

%% After a field or an element: a comma and/or newlines, comments, blanks.
separator(Bin) ->
    case skip_blanks(Bin) of
        <<",", Rest/binary>> -> skip(Rest);
        Rest -> skip(Rest)
    end.

%% Blanks, newlines and comments.
skip(Bin) ->
    case skip_blanks(Bin) of
        <<"\n", Rest/binary>> -> skip(Rest);
        <<"#", _/binary>> = C -> skip(skip_line(C));
        <<"//", _/binary>> = C -> skip(skip_line(C));
        Rest -> Rest
    end.

skip_line(Bin) ->
    case binary:split(Bin, <<"\n">>) of
        [_, Rest] -> Rest;
        [_] -> <<>>
    end.

skip_blanks(<<C, Rest/binary>>) when C =:= $\s; C =:= $\t; C =:= $\r -> skip_blanks(Rest);
skip_blanks(Bin) -> Bin.

deep_put([Key], Value, Map) when is_map(Value) ->
    Map#{Key => maps:merge(maps:get(Key, Map, #{}), Value)};
deep_put([Key], Value, Map) ->
    Map#{Key => Value};
deep_put([Key | Rest], Value, Map) ->
    Map#{Key => deep_put(Rest, Value, maps:get(Key, Map, #{}))}.
