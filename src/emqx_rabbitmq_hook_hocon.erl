%% The EMQX 5 plugin configuration (priv/config.hocon, as EMQX or the hocon library give it: a map
%% with binary keys) translated into the application env the plugin reads, the same env EMQX 4
%% builds from etc/emqx_rabbitmq_hook.conf with priv/emqx_rabbitmq_hook.schema.
%%
%% Pure. fields/0 is the one table: each row maps a path in the map to an env key and says how the
%% value is read. A setting absent from the map is absent from the env (its default applies); this
%% module only converts shapes and units, emqx_rabbitmq_hook_config:parse/1 judges the values.
-module(emqx_rabbitmq_hook_hocon).

-export([to_env/1, fields/0, format_error/1, setting/1]).

-export_type([error/0]).

-type path() :: [binary()].
-type kind() :: string | strings | integer | boolean | optional_string | {duration, ms | s}
              | bytesize | queues | events | routing_keys.
-type error() :: {path(), {bad_value, kind(), term()} | unknown}.

-define(EVENTS, [client_connected, client_disconnected, message_publish]).

%%--------------------------------------------------------------------
%% The table
%%--------------------------------------------------------------------

-spec fields() -> [{path(), atom(), kind()}].
fields() ->
    [{[<<"servers">>], servers, strings},
     {[<<"username">>], username, string},
     {[<<"password">>], password, string},
     {[<<"password_file">>], password_file, string},
     {[<<"auth_mechanism">>], auth_mechanism, string},
     {[<<"vhost">>], vhost, string},
     {[<<"heartbeat">>], heartbeat, {duration, s}},
     {[<<"connect_timeout">>], connect_timeout_ms, {duration, ms}},
     {[<<"reconnect_min">>], reconnect_min_ms, {duration, ms}},
     {[<<"reconnect_max">>], reconnect_max_ms, {duration, ms}},
     {[<<"tls">>, <<"enable">>], tls_enable, boolean},
     {[<<"tls">>, <<"cacertfile">>], tls_cacertfile, string},
     {[<<"tls">>, <<"certfile">>], tls_certfile, string},
     {[<<"tls">>, <<"keyfile">>], tls_keyfile, string},
     {[<<"tls">>, <<"verify">>], tls_verify, boolean},
     {[<<"tls">>, <<"server_name">>], tls_server_name, string},
     {[<<"exchange">>], exchange, string},
     {[<<"exchange_type">>], exchange_type, string},
     {[<<"queues">>], queues, queues},
     {[<<"unroutable_queue">>], unroutable_queue, string},
     {[<<"queue_type">>], queue_type, string},
     {[<<"queue_mode">>], queue_mode, string},
     {[<<"queue_version">>], queue_version, integer},
     {[<<"events">>], events, events},
     {[<<"events">>], routing_keys, routing_keys},
     {[<<"publish_topics">>], publish_topics, strings},
     {[<<"payload_encoding">>], payload_encoding, string},
     {[<<"max_payload_size">>], max_payload_bytes, bytesize},
     {[<<"node">>], node, optional_string},
     {[<<"publishers">>], publishers, integer},
     {[<<"confirm_window">>], confirm_window, integer},
     {[<<"buffer_events">>], buffer_events, integer},
     {[<<"drain_timeout">>], drain_timeout_ms, {duration, ms}},
     {[<<"spool">>, <<"dir">>], spool_dir, string},
     {[<<"spool">>, <<"max_size">>], spool_max_bytes, bytesize},
     {[<<"spool">>, <<"sync">>], spool_sync, string},
     {[<<"spool">>, <<"sync_interval">>], spool_sync_interval_ms, {duration, ms}},
     {[<<"presence">>, <<"enable">>], presence, boolean},
     {[<<"presence">>, <<"buffer_events">>], presence_buffer_events, integer},
     {[<<"presence">>, <<"batch">>], presence_batch, integer},
     {[<<"presence">>, <<"node_ttl">>], presence_node_ttl_ms, {duration, ms}},
     {[<<"presence">>, <<"tombstone_ttl">>], presence_tombstone_ttl_ms, {duration, ms}},
     {[<<"presence">>, <<"timeout">>], presence_timeout_ms, {duration, ms}},
     {[<<"redis">>, <<"server">>], redis_server, string},
     {[<<"redis">>, <<"username">>], redis_username, string},
     {[<<"redis">>, <<"password">>], redis_password, string},
     {[<<"redis">>, <<"db">>], redis_db, integer},
     {[<<"redis">>, <<"key_prefix">>], redis_key_prefix, string}].

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

%% Config is a map with binary keys; the env comes out in the order of fields/0. A setting the
%% table does not know is refused, as EMQX 4's schema refuses it: a misspelt one would otherwise
%% leave its default in force without a word.
-spec to_env(map()) -> {ok, [{atom(), term()}]} | {error, error()}.
to_env(Config) when is_map(Config) ->
    case unknown(Config, []) of
        [] -> to_env(fields(), Config, []);
        [Path | _] -> {error, {Path, unknown}}
    end.

to_env([], _Config, Acc) ->
    {ok, lists:reverse(Acc)};
to_env([{Path, Key, Kind} | Rest], Config, Acc) ->
    case lookup(Path, Config) of
        none ->
            to_env(Rest, Config, Acc);
        {ok, Value} ->
            case convert(Kind, Value) of
                {ok, Converted} -> to_env(Rest, Config, [{Key, Converted} | Acc]);
                omit -> to_env(Rest, Config, Acc);
                error -> {error, {Path, {bad_value, Kind, Value}}}
            end
    end.

%% The setting an env key comes from, as the operator writes it: spool_max_bytes is
%% "spool.max_size". A key with no setting keeps its own name.
-spec setting(atom()) -> unicode:unicode_binary().
setting(Key) ->
    case [Path || {Path, K, _} <- fields(), K =:= Key] of
        [Path | _] -> iolist_to_binary(lists:join(".", Path));
        [] -> atom_to_binary(Key, utf8)
    end.

%% One line naming the setting as the operator writes it, e.g. "spool.max_size". A secret's value
%% is never shown (an unquoted number is a value HOCON reads as an integer).
-spec format_error(error()) -> unicode:unicode_binary().
format_error({Path, unknown}) ->
    unicode:characters_to_binary(io_lib:format("unknown setting ~ts", [lists:join(".", Path)]));
format_error({Path, {bad_value, Kind, Value}}) ->
    Shown = case [Key || {P, Key, _} <- fields(), P =:= Path, emqx_rabbitmq_hook_config:is_secret(Key)] of
                [] -> io_lib:format("~0tp", [Value]);
                _ -> "the value (not shown)"
            end,
    unicode:characters_to_binary(io_lib:format("invalid value for ~ts: ~ts is not ~ts",
                                               [lists:join(".", Path), Shown, expected(Kind)])).

%%--------------------------------------------------------------------
%% Conversions: convert(Kind, Value) -> {ok, EnvValue} | omit | error
%%--------------------------------------------------------------------

convert(string, V) when is_binary(V) -> {ok, V};
%% One string may hold several items separated by commas, as in the EMQX 4 file.
convert(strings, V) when is_binary(V) -> {ok, [string:trim(T) || T <- string:lexemes(V, ","), string:trim(T) =/= <<>>]};
convert(strings, V) when is_list(V) -> all(V, fun(E) -> convert(string, E) end);
convert(integer, V) when is_integer(V) -> {ok, V};
convert(boolean, V) when is_boolean(V) -> {ok, V};
convert(optional_string, <<>>) -> omit;
convert(optional_string, V) -> convert(string, V);
convert({duration, s}, <<"off">>) -> {ok, 0};
convert({duration, Unit}, V) -> duration(V, Unit);
convert(bytesize, V) -> bytesize(V);
convert(queues, V) when is_list(V) -> all(V, fun queue/1);
%% An event left out keeps its default: enabled, with the default routing key.
convert(events, V) when is_map(V) ->
    with(event_fields(V, <<"enable">>, fun is_boolean/1),
         fun(Given) -> {ok, [E || E <- ?EVENTS, proplists:get_value(E, Given, true)]} end);
convert(routing_keys, V) when is_map(V) ->
    with(event_fields(V, <<"routing_key">>, fun is_binary/1), fun(Given) -> {ok, maps:from_list(Given)} end);
convert(_Kind, _V) -> error.

queue(#{<<"name">> := Name} = Queue) when is_binary(Name) ->
    with(convert(strings, maps:get(<<"bindings">>, Queue, [<<"#">>])), fun(Keys) -> {ok, {Name, Keys}} end);
queue(_) ->
    error.

%% [{Event, Value}] of events.<Event>.<Field> where it is given; error unless each passes Valid.
event_fields(Events, Field, Valid) ->
    Given = [{E, V} || E <- ?EVENTS, {ok, V} <- [lookup([atom_to_binary(E, utf8), Field], Events)]],
    case lists:all(fun({_, V}) -> Valid(V) end, Given) of
        true -> {ok, Given};
        false -> error
    end.

%% "500ms", "30s", "5m", "1h", "1d", or 0. Any other number needs its unit: a bare 30 would mean
%% seconds to some readers and milliseconds to others.
duration(0, _Unit) -> {ok, 0};
duration(V, Unit) when is_binary(V) ->
    case re:run(V, <<"^\\s*([0-9]+)\\s*(ms|s|m|h|d)\\s*$">>, [{capture, all_but_first, binary}]) of
        {match, [N, U]} ->
            Ms = binary_to_integer(N) * unit_ms(U),
            {ok, case Unit of ms -> Ms; s -> ceil_div(Ms, 1000) end};
        nomatch ->
            error
    end;
duration(_V, _Unit) ->
    error.

unit_ms(<<"ms">>) -> 1;
unit_ms(<<"s">>) -> 1000;
unit_ms(<<"m">>) -> 60000;
unit_ms(<<"h">>) -> 3600000;
unit_ms(<<"d">>) -> 86400000.

ceil_div(A, B) -> (A + B - 1) div B.

%% "512KB", "1MB", "1GB" (powers of 1024, B optional, any case), or an integer number of bytes.
bytesize(V) when is_integer(V), V >= 0 -> {ok, V};
bytesize(V) when is_binary(V) ->
    case re:run(V, <<"^\\s*([0-9]+)\\s*([kmgt]?)b?\\s*$">>, [caseless, {capture, all_but_first, binary}]) of
        {match, [N, U]} -> {ok, binary_to_integer(N) * power(string:lowercase(U))};
        nomatch -> error
    end;
bytesize(_V) ->
    error.

power(<<>>) -> 1;
power(<<"k">>) -> 1 bsl 10;
power(<<"m">>) -> 1 bsl 20;
power(<<"g">>) -> 1 bsl 30;
power(<<"t">>) -> 1 bsl 40.

expected(string) -> "a string";
expected(optional_string) -> "a string";
expected(strings) -> "a list of strings (or one string, comma separated)";
expected(integer) -> "an integer";
expected(boolean) -> "true or false";
expected({duration, s}) -> "a duration with its unit such as 30s or 5m, or \"off\"";
expected({duration, ms}) -> "a duration with its unit such as 500ms, 30s or 5m";
expected(bytesize) -> "a size such as 512KB, 1MB or 1GB";
expected(queues) -> "a list of {name = \"...\", bindings = [\"...\"]}";
expected(events) -> "events with enable = true | false";
expected(routing_keys) -> "events with a routing_key string".

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

%% The paths in Config that no setting has, in key order. Sections (tls, spool, ...) are walked;
%% events and queues have fields of their own.
unknown(Map, Prefix) when is_map(Map) ->
    lists:append([unknown_key(Prefix ++ [Key], Value) || {Key, Value} <- lists:sort(maps:to_list(Map))]);
unknown(_Value, _Prefix) ->
    [].

unknown_key([<<"events">>] = Path, Events) when is_map(Events) ->
    Names = [atom_to_binary(E, utf8) || E <- ?EVENTS],
    lists:append([case lists:member(Name, Names) of
                      true -> children(Path ++ [Name], Event, [<<"enable">>, <<"routing_key">>]);
                      false -> [Path ++ [Name]]
                  end || {Name, Event} <- lists:sort(maps:to_list(Events))]);
unknown_key([<<"queues">>] = Path, Queues) when is_list(Queues) ->
    lists:append([children(Path, Queue, [<<"name">>, <<"bindings">>]) || Queue <- Queues]);
unknown_key(Path, Value) ->
    Known = [P || {P, _, _} <- fields()],
    case {lists:member(Path, Known), is_map(Value) andalso lists:any(fun(P) -> lists:prefix(Path, P) end, Known)} of
        {true, _} -> [];
        {false, true} -> unknown(Value, Path);
        {false, false} -> [Path]
    end.

children(Path, Map, Names) when is_map(Map) ->
    [Path ++ [Key] || Key <- lists:sort(maps:keys(Map)), not lists:member(Key, Names)];
children(_Path, _Value, _Names) ->
    [].

%% A path of binary keys, as EMQX and the hocon library give them.
lookup([], Value) ->
    {ok, Value};
lookup([Key | Rest], Map) when is_map(Map) ->
    case maps:find(Key, Map) of
        {ok, Value} -> lookup(Rest, Value);
        error -> none
    end;
lookup(_Path, _NotAMap) ->
    none.

all(List, Fun) ->
    Results = [Fun(E) || E <- List],
    case lists:all(fun({ok, _}) -> true; (_) -> false end, Results) of
        true -> {ok, [V || {ok, V} <- Results]};
        false -> error
    end.

with({ok, V}, Fun) -> Fun(V);
with(error, _Fun) -> error.
