%% The plugin's configuration: application env in, the normalized map the NIF reads out.
%% Pure: nothing here has side effects (the default node name is the only thing read from the VM).
%% It reads files, though: the TLS files are checked to be readable PEM, and password_file is read
%% into password, so that a bad file stops the start with the key named.
%%
%% One table, specs/0, drives everything: each row is {Key, Default, Checker}. defaults/0 lists the
%% defaults; parse/1 runs every row's checker on the given value (or on the default, so defaults go
%% through the same validation as operator values). A checker is a term interpreted by check/3, so
%% each rule is written once however many keys use it. Config values are never turned into atoms:
%% enumerations are compared against the known names.
-module(emqx_rabbitmq_hook_config).

-export([parse/1, format_error/1, format_error/2, defaults/0, redact/1, max_value/1, is_secret/1]).

-export_type([config/0, error/0, reason/0]).

-type config() :: #{atom() => term()}.
-type reason() :: {not_text, term()}
                | {nul_byte, term()}
                | {not_utf8, term()}
                | {bad_length, term(), non_neg_integer(), non_neg_integer() | infinity}
                | {not_a_list, term()}
                | empty_list
                | {bad_server, term()}
                | {bad_queue, term()}
                | {reserved_queue | reserved_exchange, term()}
                | {type_of, binary(), binary()}
                | {not_one_of, term(), [atom()]}
                | {bad_topic_filter, term()}
                | {not_a_map, term()}
                | {bad_template, term()}
                | {not_integer, term()}
                | {out_of_range, integer(), integer(), integer()}
                | {less_than, integer(), atom(), integer()}
                | secret_not_text
                | secret_nul_byte
                | {not_boolean, term()}
                | {unreadable, binary(), file:posix() | atom()}
                | {not_pem, binary(), certificate | private_key}
                | {encrypted_key, binary()}
                | {needs, atom()}
                | external_needs_certificate
                | {empty_file, binary()}
                | {nul_in_file, binary()}.
-type error() :: {atom(), reason()}.

-define(EVENTS, [client_connected, client_disconnected, message_publish]).
-define(DEFAULT_PORT, 5672).
-define(REDIS_PORT, 6379).
%% AMQP short strings (exchange, queue, vhost, binding and routing keys) hold at most 255 bytes.
-define(SHORTSTR, 255).
%% RabbitMQ's own exchanges that the plugin may publish to, with their types.
-define(AMQ_EXCHANGES, [{<<"amq.topic">>, <<"topic">>}, {<<"amq.direct">>, <<"direct">>},
                        {<<"amq.fanout">>, <<"fanout">>}]).
%% Keys whose values are never shown: not in error lines, crash reports or sys:get_status/1.
-define(IS_SECRET(Key), (Key =:= password orelse Key =:= redis_password)).
%% The longest value format_error shows, in characters, before cutting it with "...".
-define(SHOW_MAX, 80).
%% EMQX's largest MQTT packet is 256 MB: a larger bound would never apply.
-define(MAX_PAYLOAD_LIMIT, 268435456).

%%--------------------------------------------------------------------
%% The table
%%--------------------------------------------------------------------

%% Rows are checked in this order, so a row may refer to a key above it ({key, K} bounds).
specs() ->
    [{servers, ["127.0.0.1:5672"], servers},
     {username, "guest", {text, 0, infinity}},
     {password, "guest", secret},
     {vhost, "/", {text, 1, ?SHORTSTR}},
     %% RabbitMQ reserves names starting with amq.: of its own exchanges, those of the types the
     %% plugin publishes to can be named (declaring one as it is changes nothing); no such queue.
     {exchange, "mqtt.events", exchange},
     {exchange_type, topic, exchange_type},
     {queues, [{"mqtt.events", ["#"]}], queues},
     {queue_type, classic, {one_of, [classic, quorum], binary}},
     %% Classic queues only: RabbitMQ 3.10-3.11 keep a queue's messages in memory unless it is lazy,
     %% which for a long queue of persistent events costs memory and CPU; version 2 is their newer
     %% on-disk format. "default" and 0 leave out the argument, to match queues declared without it.
     {queue_mode, lazy, {one_of, [lazy, default], binary}},
     {queue_version, 2, {int, 0, 2}},
     {events, ?EVENTS, {subset, ?EVENTS}},
     {publish_topics, ["#"], topic_filters},
     {payload_encoding, auto, {one_of, [auto, base64], atom}},
     {routing_keys, #{client_connected => "client.connected",
                      client_disconnected => "client.disconnected",
                      message_publish => "message.publish"}, routing_keys},
     %% At most 200 bytes: message_id, an AMQP short string (255), is the node, the boot id and seq.
     {node, atom_to_binary(node(), utf8), {text, 1, 200}},
     {publishers, 1, {int, 1, 16}},
     {confirm_window, 1024, {int, 1, 65535}},
     {buffer_events, 100000, {int, 1, 100000000}},
     {heartbeat, 30, {int, 0, 3600}},
     {reconnect_min_ms, 500, {int, 10, 600000}},
     {reconnect_max_ms, 30000, {int, {key, reconnect_min_ms}, 3600000}},
     {connect_timeout_ms, 5000, {int, 100, 600000}},
     {drain_timeout_ms, 5000, {int, 0, 3600000}},
     %% Returned (unroutable) messages go on to this durable queue; "" drops them, counted.
     {unroutable_queue, "mqtt.events.unroutable", queue_name},
     %% Relative to the working directory: EMQX runs in its install folder, beside data/.
     {spool_dir, "data/emqx_rabbitmq_hook/spool", {text, 1, 4000}},
     {spool_max_bytes, 1 bsl 30, {int, 0, 1 bsl 50}},
     {spool_sync, interval, {one_of, [always, interval, never], atom}},
     {spool_sync_interval_ms, 1000, {int, 1, 3600000}},
     {tls_enable, false, bool},
     {tls_cacertfile, "", {pem_file, certificate}},
     {tls_certfile, "", {pem_file, certificate}},
     {tls_keyfile, "", key_file},
     {tls_verify, true, bool},
     {tls_server_name, "", {text, 0, ?SHORTSTR}},
     {auth_mechanism, plain, auth_mechanism},
     {password_file, "", password_file},
     {max_payload_bytes, 1048576, {int, 0, ?MAX_PAYLOAD_LIMIT}},
     %% The presence registry in Redis (README, "Presence registry").
     {presence, false, {one_of, [true, false], atom}},
     {redis_server, "127.0.0.1:6379", {server, ?REDIS_PORT}},
     {redis_username, "", {text, 0, infinity}},
     {redis_password, "", secret},
     {redis_db, 0, {int, 0, 65535}},
     {redis_key_prefix, "mqtt:presence:", {text, 0, 255}},
     {presence_buffer_events, 100000, {int, 1, 100000000}},
     {presence_batch, 256, {int, 1, 10000}},
     {presence_node_ttl_ms, 30000, {int, 1000, 3600000}},
     {presence_tombstone_ttl_ms, 300000, {int, 1000, 86400000}},
     {presence_timeout_ms, 5000, {int, 100, 600000}}].

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

%% Every key with its default, in the form an operator writes it.
-spec defaults() -> [{atom(), term()}].
defaults() ->
    [{Key, Default} || {Key, Default, _} <- specs()].

%% The largest value an integer key accepts.
-spec max_value(atom()) -> integer().
max_value(Key) ->
    {Key, _, {int, _, Max}} = lists:keyfind(Key, 1, specs()),
    Max.

%% Env is a proplist (application:get_all_env/1); keys the table does not know are ignored.
-spec parse(list()) -> {ok, config()} | {error, error()}.
parse(Env) when is_list(Env) ->
    parse(specs(), Env, #{}).

parse([], _Env, Acc) ->
    {ok, Acc};
parse([{Key, Default, Checker} | Specs], Env, Acc) ->
    Value = case proplists:lookup(Key, Env) of
                {Key, V} -> V;
                none -> Default
            end,
    case check(Checker, Value, Acc) of
        {ok, Normalized} -> parse(Specs, Env, Acc#{Key => Normalized});
        {ok, Normalized, Also} -> parse(Specs, Env, maps:merge(Acc#{Key => Normalized}, Also));
        {error, Reason} -> {error, {Key, Reason}}
    end.

%% One line naming the key and what is wrong. A secret's value is never shown.
-spec format_error(error() | term()) -> unicode:unicode_binary().
format_error(Error) ->
    format_error(Error, fun(Key) -> Key end).

%% The same, with the key named as Name(Key) gives it (EMQX 5 names settings by their path).
-spec format_error(error() | term(), fun((atom()) -> atom() | unicode:chardata())) -> unicode:unicode_binary().
format_error({Key, _}, Name) when ?IS_SECRET(Key) ->
    line("invalid value for ~ts: it is not a string (a binary or a list of characters "
         "without NUL bytes)", [Name(Key)]);
format_error({Key, Reason}, Name) when is_atom(Key) ->
    line("invalid value for ~ts: ~ts", [Name(Key), reason(Reason)]);
format_error(Other, _Name) ->
    line("invalid configuration: ~0tP", [Other, 20]).

%% Is the key's value a secret, never to be shown?
-spec is_secret(atom()) -> boolean().
is_secret(Key) ->
    ?IS_SECRET(Key).

%% The same config map, or error, with every secret's value replaced: for what goes into logs and
%% crash reports (an error's reason holds the value it rejects).
-spec redact(config() | error() | term()) -> config() | error() | term().
redact(Config) when is_map(Config) ->
    maps:map(fun(Key, _) when ?IS_SECRET(Key) -> <<"******">>;
                (_, Value) -> Value
             end, Config);
redact({Key, _}) when ?IS_SECRET(Key) ->
    {Key, hidden};
redact(Error) ->
    Error.

%%--------------------------------------------------------------------
%% Checkers: check(Checker, Value, ParsedSoFar) -> {ok, Normalized} | {error, reason()}
%% (or {ok, Normalized, OtherKeys} when the value also sets other keys)
%%--------------------------------------------------------------------

check({text, Min, Max}, V, _) ->
    text(V, Min, Max);
check(secret, V, _) ->
    %% Passwords are bytes to RabbitMQ: no UTF-8 requirement, only no NUL (C strings). The reason
    %% never carries the value: error terms end up in logs.
    case to_bin(V) of
        {ok, Bin} ->
            case no_nul(Bin, V) of
                {ok, Bin} -> {ok, Bin};
                {error, _} -> {error, secret_nul_byte}
            end;
        {error, _} ->
            {error, secret_not_text}
    end;
check(bool, V, _) when is_boolean(V) ->
    {ok, V};
check(bool, V, _) ->
    {error, {not_boolean, V}};
check({pem_file, Kind}, V, _) ->
    optional_path(V, fun(Path) -> pem_file(Path, Kind) end);
check(key_file, V, #{tls_certfile := Cert}) ->
    case check({pem_file, private_key}, V, #{}) of
        {ok, <<>>} when Cert =/= <<>> -> {error, {needs, tls_certfile}};
        {ok, Key} when Key =/= <<>>, Cert =:= <<>> -> {error, {needs, tls_certfile}};
        Result -> Result
    end;
check(auth_mechanism, V, Acc) ->
    case one_of(V, [plain, external]) of
        {ok, external} ->
            case Acc of
                #{tls_enable := true, tls_certfile := Cert} when Cert =/= <<>> -> {ok, external};
                _ -> {error, external_needs_certificate}
            end;
        Result ->
            Result
    end;
check(password_file, V, _) ->
    optional_path(V, fun read_password/1);
check({one_of, Names, As}, V, _) ->
    with(one_of(V, Names), fun(Name) when As =:= atom -> {ok, Name};
                              (Name) -> {ok, atom_to_binary(Name, utf8)}
                           end);
check({subset, Names}, V, _) ->
    with(each(V, fun(E) -> one_of(E, Names) end),
         fun(Given) -> {ok, [N || N <- Names, lists:member(N, Given)]} end);
check({int, {key, Other}, Max}, V, Acc) ->
    Min = maps:get(Other, Acc),
    case check({int, Min, Max}, V, Acc) of
        {error, {out_of_range, V, Min, Max}} when V < Min -> {error, {less_than, V, Other, Min}};
        Result -> Result
    end;
check({int, Min, Max}, V, _) when is_integer(V), V >= Min, V =< Max ->
    {ok, V};
check({int, Min, Max}, V, _) when is_integer(V) ->
    {error, {out_of_range, V, Min, Max}};
check({int, _, _}, V, _) ->
    {error, {not_integer, V}};
check({server, DefaultPort}, V, _) ->
    server(V, DefaultPort);
check(servers, V, _) ->
    Servers = case is_string(V) of
                  true -> [V];
                  false -> V
              end,
    with(each(Servers, fun server/1),
         fun([]) -> {error, empty_list};
            (List) -> {ok, List}
         end);
check(queues, V, _) ->
    each(V, fun queue/1);
check(queue_name, V, _) ->
    with(text(V, 0, ?SHORTSTR), fun not_reserved/1);
check(exchange, V, _) ->
    with(text(V, 1, ?SHORTSTR),
         fun(<<"amq.", _/binary>> = Name) ->
                 case lists:keymember(Name, 1, ?AMQ_EXCHANGES) of
                     true -> {ok, Name};
                     false -> {error, {reserved_exchange, V}}
                 end;
            (Name) ->
                 {ok, Name}
         end);
check(exchange_type, V, #{exchange := Exchange}) ->
    with(check({one_of, [topic, direct, fanout], binary}, V, #{}),
         fun(Type) ->
                 case lists:keyfind(Exchange, 1, ?AMQ_EXCHANGES) of
                     {Exchange, Own} when Own =/= Type -> {error, {type_of, Exchange, Own}};
                     _ -> {ok, Type}
                 end
         end);
check(topic_filters, V, _) ->
    each(V, fun topic_filter/1);
check(routing_keys, V, _) ->
    %% Keys left out keep their default (the table row's, which names all three).
    {routing_keys, Default, _} = lists:keyfind(routing_keys, 1, specs()),
    {ok, Defaults} = routing_keys(maps:to_list(Default), #{}),
    with(pairs(V), fun(Pairs) -> routing_keys(Pairs, Defaults) end).

%% Text: a binary or a flat list of characters, UTF-8, no NUL, byte size in Min..Max.
text(V, Min, Max) ->
    with(to_bin(V),
         fun(Bin) ->
                 with(no_nul(Bin, V),
                      fun(_) ->
                              case unicode:characters_to_binary(Bin) of
                                  Bin when byte_size(Bin) < Min; byte_size(Bin) > Max ->
                                      {error, {bad_length, V, Min, Max}};
                                  Bin -> {ok, Bin};
                                  _ -> {error, {not_utf8, V}}
                              end
                      end)
         end).

to_bin(V) when is_binary(V) ->
    {ok, V};
to_bin(V) when is_list(V) ->
    case lists:all(fun is_integer/1, V) andalso unicode:characters_to_binary(V) of
        Bin when is_binary(Bin) -> {ok, Bin};
        _ -> {error, {not_text, V}}
    end;
to_bin(V) ->
    {error, {not_text, V}}.

no_nul(Bin, V) ->
    case binary:match(Bin, <<0>>) of
        nomatch -> {ok, Bin};
        _ -> {error, {nul_byte, V}}
    end.

%% One of the known atoms, given as the atom, a string or a binary.
one_of(V, Names) when is_atom(V) ->
    case lists:member(V, Names) of
        true -> {ok, V};
        false -> {error, {not_one_of, V, Names}}
    end;
one_of(V, Names) ->
    Given = case to_bin(V) of
                {ok, Bin} -> Bin;
                Error -> Error
            end,
    case [N || N <- Names, atom_to_binary(N, utf8) =:= Given] of
        [Name] -> {ok, Name};
        [] -> {error, {not_one_of, V, Names}}
    end.

%% "host:port", "host", "[v6]:port" or "[v6]" → {HostBinary, Port}; the brackets are dropped.
server(V) ->
    server(V, ?DEFAULT_PORT).

server(V, DefaultPort) ->
    Bad = {error, {bad_server, V}},
    case to_bin(V) of
        {ok, Bin} ->
            case split_server(Bin) of
                {ok, Host, Port} ->
                    case valid_host(Host) andalso port(Port, DefaultPort) of
                        {ok, P} -> {ok, {Host, P}};
                        _ -> Bad
                    end;
                error ->
                    Bad
            end;
        Error ->
            Error
    end.

split_server(<<$[, Rest/binary>>) ->
    case binary:split(Rest, <<"]">>) of
        [Host, <<>>] -> v6(Host, default);
        [Host, <<$:, Port/binary>>] -> v6(Host, Port);
        _ -> error
    end;
split_server(Bin) ->
    case binary:split(Bin, <<":">>, [global]) of
        [Host] -> {ok, Host, default};
        [Host, Port] -> {ok, Host, Port};
        _ -> error  % an IPv6 address needs brackets
    end.

v6(Host, Port) ->
    case binary:match(Host, <<":">>) of
        nomatch -> error;
        _ -> {ok, Host, Port}
    end.

valid_host(<<>>) ->
    false;
valid_host(Host) ->
    nomatch =:= binary:match(Host, [<<0>>, <<" ">>, <<"\t">>, <<"[">>, <<"]">>, <<"/">>])
        andalso unicode:characters_to_binary(Host) =:= Host.

port(default, DefaultPort) ->
    {ok, DefaultPort};
port(Port, _) ->
    case re:run(Port, <<"^[0-9]{1,5}$">>, [{capture, none}]) of
        match ->
            P = binary_to_integer(Port),
            case P >= 1 andalso P =< 65535 of
                true -> {ok, P};
                false -> error
            end;
        nomatch ->
            error
    end.

%% A file path, or "" for none.
optional_path(V, Check) ->
    with(text(V, 0, 4096),
         fun(<<>>) -> {ok, <<>>};
            (Path) -> Check(Path)
         end).

%% A PEM file holding a certificate or an unencrypted private key. Only the path goes into errors.
pem_file(Path, Kind) ->
    Label = case Kind of
                certificate -> <<"CERTIFICATE-----">>;
                private_key -> <<"PRIVATE KEY-----">>
            end,
    case file:read_file(Path) of
        {ok, Pem} ->
            IsPem = binary:match(Pem, <<"-----BEGIN ">>) =/= nomatch andalso binary:match(Pem, Label) =/= nomatch,
            Encrypted = binary:match(Pem, [<<"ENCRYPTED PRIVATE KEY-----">>, <<"Proc-Type: 4,ENCRYPTED">>]),
            case {IsPem, Kind, Encrypted} of
                {false, _, _} -> {error, {not_pem, Path, Kind}};
                {true, private_key, {_, _}} -> {error, {encrypted_key, Path}};
                {true, _, _} -> {ok, Path}
            end;
        {error, Why} ->
            {error, {unreadable, Path, Why}}
    end.

%% The password is the file's content without one trailing newline; it replaces `password`.
read_password(Path) ->
    case file:read_file(Path) of
        {ok, Content} ->
            case strip_newline(Content) of
                <<>> -> {error, {empty_file, Path}};
                Password ->
                    case binary:match(Password, <<0>>) of
                        nomatch -> {ok, Path, #{password => Password}};
                        _ -> {error, {nul_in_file, Path}}
                    end
            end;
        {error, Why} ->
            {error, {unreadable, Path, Why}}
    end.

strip_newline(Bin) ->
    case Bin of
        <<Text:(byte_size(Bin) - 2)/binary, "\r\n">> -> Text;
        <<Text:(byte_size(Bin) - 1)/binary, "\n">> -> Text;
        _ -> Bin
    end.

queue({Name, Keys}) ->
    with(with(text(Name, 1, ?SHORTSTR), fun not_reserved/1),
         fun(N) -> with(each(Keys, fun(K) -> text(K, 0, ?SHORTSTR) end), fun(Ks) -> {ok, {N, Ks}} end) end);
queue(V) ->
    {error, {bad_queue, V}}.

%% RabbitMQ refuses to declare a queue whose name starts with amq. (access_refused).
not_reserved(<<"amq.", _/binary>> = Name) ->
    {error, {reserved_queue, Name}};
not_reserved(Name) ->
    {ok, Name}.

%% MQTT topic filter (MQTT 3.1.1 §4.7): '#' only as the whole last level, '+' only as a whole level.
topic_filter(V) ->
    with(text(V, 1, 65535),
         fun(Bin) ->
                 case valid_levels(binary:split(Bin, <<"/">>, [global])) of
                     true -> {ok, Bin};
                     false -> {error, {bad_topic_filter, V}}
                 end
         end).

valid_levels([<<"#">>]) -> true;
valid_levels([Level | Rest]) ->
    (Level =:= <<"+">> orelse binary:match(Level, [<<"+">>, <<"#">>]) =:= nomatch)
        andalso (Rest =:= [] orelse valid_levels(Rest)).

%% routing_keys: a map or a proplist of Event => Template.
pairs(V) when is_map(V) -> {ok, maps:to_list(V)};
pairs(V) when is_list(V) ->
    case lists:all(fun(E) -> is_tuple(E) andalso tuple_size(E) =:= 2 end, V) of
        true -> {ok, V};
        false -> {error, {not_a_map, V}}
    end;
pairs(V) -> {error, {not_a_map, V}}.

routing_keys([], Acc) ->
    {ok, Acc};
routing_keys([{Event, Template} | Rest], Acc) ->
    with(one_of(Event, ?EVENTS),
         fun(E) ->
                 with(text(Template, 0, ?SHORTSTR),
                      fun(T) ->
                              case valid_template(E, T) of
                                  true -> routing_keys(Rest, Acc#{E => T});
                                  false -> {error, {bad_template, Template}};
                                  no_topic -> {error, {no_topic, E, Template}}
                              end
                      end)
         end).

%% Every "${" must open one of the known placeholders; only publish events have a topic.
valid_template(Event, T) ->
    case binary:split(T, <<"${">>) of
        [_] -> true;
        [_, <<"clientid}", Rest/binary>>] -> valid_template(Event, Rest);
        [_, <<"username}", Rest/binary>>] -> valid_template(Event, Rest);
        [_, <<"topic}", Rest/binary>>] when Event =:= message_publish -> valid_template(Event, Rest);
        [_, <<"topic}", _/binary>>] -> no_topic;
        [_, _] -> false
    end.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

with({ok, V}, Fun) -> Fun(V);
with({error, _} = Error, _) -> Error.

%% Check every element of a list; a (printable) string where a list is expected is an error, not
%% a list of characters.
each(V, Fun) when is_list(V) ->
    case V =/= [] andalso io_lib:printable_unicode_list(V) of
        true -> {error, {not_a_list, V}};
        false -> each(V, Fun, [])
    end;
each(V, _) ->
    {error, {not_a_list, V}}.

each([], _, Acc) ->
    {ok, lists:reverse(Acc)};
each([E | Rest], Fun, Acc) ->
    with(Fun(E), fun(N) -> each(Rest, Fun, [N | Acc]) end);
each(Improper, _, _) ->
    {error, {not_a_list, Improper}}.

is_string(V) when is_binary(V) -> true;
is_string([_ | _] = V) -> lists:all(fun is_integer/1, V);
is_string(_) -> false.

%%--------------------------------------------------------------------
%% Rendering
%%--------------------------------------------------------------------

reason({not_text, V}) -> [show(V), " is not a string"];
reason({nul_byte, V}) -> [show(V), " contains a NUL byte"];
reason({not_utf8, V}) -> [show(V), " is not valid UTF-8"];
reason({bad_length, V, Min, infinity}) ->
    io_lib:format("~ts is ~b bytes long, must be at least ~b", [show(V), size_of(V), Min]);
reason({bad_length, V, Min, Max}) ->
    io_lib:format("~ts is ~b bytes long, must be ~b..~b", [show(V), size_of(V), Min, Max]);
reason({not_a_list, V}) -> [show(V), " is not a list"];
reason(empty_list) -> "the list is empty";
reason({bad_server, V}) -> [show(V), " is not host:port with a port 1..65535 (IPv6: [addr]:port)"];
reason({bad_queue, V}) -> [show(V), " is not {QueueName, [BindingKey]}"];
reason({reserved_queue, V}) ->
    [show(V), " starts with amq., which RabbitMQ reserves: it refuses to declare such a queue"];
reason({reserved_exchange, V}) ->
    [show(V), " starts with amq., which RabbitMQ reserves: of its own exchanges, amq.topic, amq.direct or "
     "amq.fanout may be named"];
reason({type_of, Exchange, Type}) ->
    ["the exchange ", Exchange, " is RabbitMQ's own, of type ", Type, ": it must be ", Type];
reason({not_one_of, V, Names}) ->
    [show(V), " is not one of ", lists:join(", ", [atom_to_list(N) || N <- Names])];
reason({bad_topic_filter, V}) ->
    [show(V), " is not an MQTT topic filter ('#' only as the whole last level, '+' only as a whole level)"];
reason({not_a_map, V}) -> [show(V), " is not a map or a list of {Key, Value}"];
reason({bad_template, V}) ->
    [show(V), " has a \"${\" that is not ${clientid}, ${username} or ${topic}"];
reason({no_topic, Event, V}) ->
    [show(V), " uses ${topic}, but only message_publish events have a topic, not ", atom_to_list(Event)];
reason({not_integer, V}) -> [show(V), " is not an integer"];
reason({out_of_range, V, Min, Max}) -> io_lib:format("~b is not in ~b..~b", [V, Min, Max]);
reason({less_than, V, Other, Min}) ->
    io_lib:format("~b is less than ~ts (~b)", [V, Other, Min]);
reason(secret_not_text) -> "it is not a string (the value is not shown)";
reason(secret_nul_byte) -> "it contains a NUL byte (the value is not shown)";
reason({not_boolean, V}) -> [show(V), " is not true or false"];
reason({unreadable, Path, Why}) -> [show(Path), " cannot be read: ", file:format_error(Why)];
reason({not_pem, Path, certificate}) -> [show(Path), " holds no PEM certificate"];
reason({not_pem, Path, private_key}) -> [show(Path), " holds no PEM private key"];
reason({encrypted_key, Path}) ->
    [show(Path), " is encrypted; give the key unencrypted, in a file only the broker's user can read"];
reason({needs, Other}) -> ["it goes with ", atom_to_list(Other), ": set both or neither"];
reason(external_needs_certificate) ->
    "external logs in with the client certificate: it needs tls_enable = true, tls_certfile and tls_keyfile";
reason({empty_file, Path}) -> [show(Path), " is empty"];
reason({nul_in_file, Path}) -> [show(Path), " contains a NUL byte (the content is not shown)"];
%% Reasons from elsewhere, e.g. the NIF's {Key, badarg | enomem | system_limit}.
reason(badarg) -> "rejected by the NIF";
reason(enomem) -> "out of memory while reading it";
reason(Text) when is_binary(Text) -> Text;
reason(Other) -> io_lib:format("~0tP", [Other, 20]).

size_of(V) ->
    case to_bin(V) of
        {ok, Bin} -> byte_size(Bin);
        _ -> 0
    end.

%% A value as a person reads it: text in double quotes (cut when long), bytes that are not UTF-8
%% as a binary of numbers, other terms as Erlang (depth-limited).
show([]) ->
    "\"\"";
show(V) ->
    case is_string(V) andalso unicode:characters_to_list(V) of
        Chars when is_list(Chars), length(Chars) > ?SHOW_MAX ->
            [io_lib:write_string(lists:sublist(Chars, ?SHOW_MAX)), "..."];
        Chars when is_list(Chars) ->
            io_lib:write_string(Chars);
        _ when is_binary(V), byte_size(V) > ?SHOW_MAX ->
            io_lib:format("~w...", [binary:part(V, 0, ?SHOW_MAX)]);
        _ when is_binary(V) ->
            io_lib:format("~w", [V]);
        _ ->
            io_lib:format("~0tP", [V, 20])
    end.

line(Format, Args) ->
    unicode:characters_to_binary(io_lib:format(Format, Args)).
