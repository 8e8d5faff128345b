%% The configuration files operators edit, checked against what the plugin reads:
%% - EMQX 4: etc/emqx_rabbitmq_hook.conf through priv/emqx_rabbitmq_hook.schema with the cuttlefish
%%   library (shipped with Debian's rabbitmq-server), every key of the file into the env, wrong
%%   values named by cuttlefish or by the plugin's validation;
%% - EMQX 5: priv/config.hocon through emqx_rabbitmq_hook_hocon, and priv/config_schema.avsc (the
%%   schema EMQX 5.7+ checks the configuration against) agreeing with both;
%% - both: every key of emqx_rabbitmq_hook_config:defaults() is reachable from each file, so a
%%   new key cannot be forgotten, and the two default files mean the same configuration.
-module(emqx_rabbitmq_hook_schema_tests).

-include_lib("eunit/include/eunit.hrl").

root() ->
    filename:dirname(filename:dirname(proplists:get_value(source, ?MODULE:module_info(compile)))).

path(Relative) ->
    filename:join(root(), Relative).

known_keys() ->
    lists:usort([Key || {Key, _} <- emqx_rabbitmq_hook_config:defaults()]).

%%--------------------------------------------------------------------
%% EMQX 4: the conf file as EMQX reads it, the schema through cuttlefish
%%--------------------------------------------------------------------

%% EMQX's cuttlefish (emqx/cuttlefish, conf_parse.peg) takes everything after "=" to the end of
%% the line as the value, "#" included (topic filters and binding keys need it); the upstream
%% cuttlefish on this machine would cut the value at "#". So the file is read here the way EMQX
%% reads it, and the settings go to cuttlefish's generator, which does the rest as in EMQX.
%% With Commented, the settings shown commented out ("## rabbitmq_hook.x = example") count too.
conf_settings(Commented) ->
    {ok, Text} = file:read_file(path("etc/emqx_rabbitmq_hook.conf")),
    lists:append([setting(string:trim(Line), Commented)
                  || Line <- string:split(unicode:characters_to_list(Text), "\n", all)]).

setting("", _) ->
    [];
setting("## " ++ Rest, true) ->
    case setting_re(Rest) of
        {match, [Key, Value]} -> [{string:lexemes(Key, "."), Value}];
        nomatch -> []
    end;
setting("#" ++ _, _) ->
    [];
setting(Line, _) ->
    {match, [Key, Value]} = setting_re(Line),
    [{string:lexemes(Key, "."), Value}].

setting_re(Line) ->
    re:run(Line, "^(rabbitmq_hook\\.[A-Za-z0-9_.]+)\\s*=\\s*(.*\\S)\\s*$", [{capture, all_but_first, list}]).

schema() ->
    cuttlefish_schema:files([path("priv/emqx_rabbitmq_hook.schema")]).

%% Settings [{"a.b", Value}] -> {ok, Env} | {cuttlefish, ErrorLines}
translate(Settings) ->
    Conf = [{string:lexemes(Key, "."), Value} || {Key, Value} <- Settings],
    case cuttlefish_generator:map(schema(), Conf) of
        [{emqx_rabbitmq_hook, Env}] -> {ok, Env};
        {error, _Phase, {errorlist, Errors}} -> {cuttlefish, [error_line(E) || E <- Errors]}
    end.

%% cuttlefish's own sentence for an error, or the error term for those it has none.
error_line(Error) ->
    try lists:flatten(cuttlefish_error:xlate(Error))
    catch error:function_clause -> lists:flatten(io_lib:format("~0p", [Error]))
    end.

conf_env() ->
    Conf = [{string:join(Key, "."), Value} || {Key, Value} <- conf_settings(false)],
    {ok, Env} = translate(Conf),
    Env.

cuttlefish_is_here_test() ->
    ?assertMatch({{module, _}, _}, {code:ensure_loaded(cuttlefish_generator),
                                    "cuttlefish not found: the tests run with ERL_LIBS set to "
                                    "rabbitmq-server's plugins folder (make test-erl)"}).

%% Settings that are not set by default (commented out in the conf file, "" in config.hocon).
-define(UNSET, [node, password_file, tls_cacertfile, tls_certfile, tls_keyfile, tls_server_name,
                redis_username, redis_password]).

%% The shipped file sets the documented defaults, nothing else.
conf_file_sets_the_defaults_test() ->
    Env = conf_env(),
    ?assertEqual(emqx_rabbitmq_hook_config:parse([]), emqx_rabbitmq_hook_config:parse(Env)),
    ?assertEqual(lists:sort(known_keys() -- ?UNSET), lists:sort([K || {K, _} <- Env])),
    ?assertMatch(#{spool_dir := "data/emqx_rabbitmq_hook/spool", spool_max_bytes := 1073741824,
                   spool_sync := interval, spool_sync_interval_ms := 1000, presence := false,
                   redis_server := "127.0.0.1:6379", redis_db := 0, redis_key_prefix := "mqtt:presence:",
                   unroutable_queue := "mqtt.events.unroutable",
                   tls_enable := false, tls_verify := true, auth_mechanism := plain,
                   max_payload_bytes := 1048576}, maps:from_list(Env)).

%% {conf lines, env key, env value}: one row per key of the conf file (commented ones included),
%% each with a value that is not the default.
conf_examples() ->
    [{[{"rabbitmq_hook.servers", "r1:5672, [::1]:5671,r3"}], servers, ["r1:5672", "[::1]:5671", "r3"]},
     {[{"rabbitmq_hook.username", "emqx"}], username, "emqx"},
     {[{"rabbitmq_hook.password", "p#ss w0rd"}], password, "p#ss w0rd"},
     {[{"rabbitmq_hook.password_file", "etc/rabbitmq_hook.password"}], password_file, "etc/rabbitmq_hook.password"},
     {[{"rabbitmq_hook.auth_mechanism", "external"}], auth_mechanism, external},
     {[{"rabbitmq_hook.vhost", "/iot"}], vhost, "/iot"},
     {[{"rabbitmq_hook.heartbeat", "off"}], heartbeat, 0},
     {[{"rabbitmq_hook.connect_timeout", "2s"}], connect_timeout_ms, 2000},
     {[{"rabbitmq_hook.reconnect_min", "1s"}], reconnect_min_ms, 1000},
     {[{"rabbitmq_hook.reconnect_max", "2m"}], reconnect_max_ms, 120000},
     {[{"rabbitmq_hook.tls.enable", "on"}], tls_enable, true},
     {[{"rabbitmq_hook.tls.cacertfile", "etc/certs/ca.pem"}], tls_cacertfile, "etc/certs/ca.pem"},
     {[{"rabbitmq_hook.tls.certfile", "etc/certs/client.pem"}], tls_certfile, "etc/certs/client.pem"},
     {[{"rabbitmq_hook.tls.keyfile", "etc/certs/client.key"}], tls_keyfile, "etc/certs/client.key"},
     {[{"rabbitmq_hook.tls.verify", "off"}], tls_verify, false},
     {[{"rabbitmq_hook.tls.server_name", "rabbit.example.com"}], tls_server_name, "rabbit.example.com"},
     {[{"rabbitmq_hook.exchange", "iot.events"}], exchange, "iot.events"},
     {[{"rabbitmq_hook.exchange_type", "fanout"}], exchange_type, fanout},
     {[{"rabbitmq_hook.queue.1.name", "iothub"}, {"rabbitmq_hook.queue.1.bindings", "client.*, message.#"},
       {"rabbitmq_hook.queue.10.name", "last"}, {"rabbitmq_hook.queue.2.name", "audit"}],
      queues, [{"iothub", ["client.*", "message.#"]}, {"audit", ["#"]}, {"last", ["#"]}]},
     {[{"rabbitmq_hook.queues", "off"}], queues, []},
     {[{"rabbitmq_hook.unroutable_queue", "iot.unroutable"}], unroutable_queue, "iot.unroutable"},
     {[{"rabbitmq_hook.unroutable_queue", "off"}], unroutable_queue, ""},
     {[{"rabbitmq_hook.queue_type", "quorum"}], queue_type, quorum},
     {[{"rabbitmq_hook.queue_mode", "default"}], queue_mode, default},
     {[{"rabbitmq_hook.queue_version", "0"}], queue_version, 0},
     {[{"rabbitmq_hook.events.client_connected.enable", "off"}], events, [client_disconnected, message_publish]},
     {[{"rabbitmq_hook.events.client_disconnected.enable", "off"},
       {"rabbitmq_hook.events.message_publish.enable", "off"}], events, [client_connected]},
     {[{"rabbitmq_hook.events.client_connected.routing_key", "c.${clientid}"},
       {"rabbitmq_hook.events.client_disconnected.routing_key", "d.${username}"},
       {"rabbitmq_hook.events.message_publish.routing_key", "msg.${topic}"}],
      routing_keys, #{client_connected => "c.${clientid}", client_disconnected => "d.${username}",
                      message_publish => "msg.${topic}"}},
     {[{"rabbitmq_hook.publish_topics", "sensors/+/temp, $SYS/#"}], publish_topics, ["sensors/+/temp", "$SYS/#"]},
     {[{"rabbitmq_hook.payload_encoding", "base64"}], payload_encoding, base64},
     {[{"rabbitmq_hook.max_payload_size", "256KB"}], max_payload_bytes, 262144},
     {[{"rabbitmq_hook.node", "emqx@10.0.0.1"}], node, "emqx@10.0.0.1"},
     {[{"rabbitmq_hook.publishers", "4"}], publishers, 4},
     {[{"rabbitmq_hook.confirm_window", "256"}], confirm_window, 256},
     {[{"rabbitmq_hook.buffer_events", "5000"}], buffer_events, 5000},
     {[{"rabbitmq_hook.drain_timeout", "30s"}], drain_timeout_ms, 30000},
     {[{"rabbitmq_hook.spool.dir", "/var/lib/emqx/spool"}], spool_dir, "/var/lib/emqx/spool"},
     {[{"rabbitmq_hook.spool.max_size", "512MB"}], spool_max_bytes, 536870912},
     {[{"rabbitmq_hook.spool.sync", "always"}], spool_sync, always},
     {[{"rabbitmq_hook.spool.sync_interval", "200ms"}], spool_sync_interval_ms, 200},
     {[{"rabbitmq_hook.presence.enable", "on"}], presence, true},
     {[{"rabbitmq_hook.presence.buffer_events", "5000"}], presence_buffer_events, 5000},
     {[{"rabbitmq_hook.presence.batch", "64"}], presence_batch, 64},
     {[{"rabbitmq_hook.presence.node_ttl", "1m"}], presence_node_ttl_ms, 60000},
     {[{"rabbitmq_hook.presence.tombstone_ttl", "1h"}], presence_tombstone_ttl_ms, 3600000},
     {[{"rabbitmq_hook.presence.timeout", "2s"}], presence_timeout_ms, 2000},
     {[{"rabbitmq_hook.redis.server", "redis:6380"}], redis_server, "redis:6380"},
     {[{"rabbitmq_hook.redis.username", "emqx"}], redis_username, "emqx"},
     {[{"rabbitmq_hook.redis.password", "s3cret"}], redis_password, "s3cret"},
     {[{"rabbitmq_hook.redis.db", "2"}], redis_db, 2},
     {[{"rabbitmq_hook.redis.key_prefix", "iot:online:"}], redis_key_prefix, "iot:online:"}].

every_key_of_the_conf_file_reaches_the_env_test_() ->
    [{Key, ?_assertEqual({Key, {ok, Value}}, {Key, value(EnvKey, translate(Settings))})}
     || {Settings = [{Key, _} | _], EnvKey, Value} <- conf_examples()].

value(Key, {ok, Env}) -> {ok, proplists:get_value(Key, Env)};
value(_Key, Error) -> Error.

%% The examples cover the file, the file covers the schema: one set of keys ($id for numbers).
examples_file_and_schema_name_the_same_keys_test() ->
    Examples = lists:usort([generic(Key) || {Settings, _, _} <- conf_examples(), {Key, _} <- Settings]),
    InFile = lists:usort([generic(string:join(Key, ".")) || {Key, _} <- conf_settings(true)]),
    {_, Mappings, _} = schema(),
    InSchema = lists:usort([cuttlefish_variable:format(cuttlefish_mapping:variable(M)) || M <- Mappings]),
    ?assertEqual(InSchema, InFile),
    ?assertEqual(InSchema, Examples).

generic(Key) ->
    string:join([case re:run(Part, "^[0-9]+$", [{capture, none}]) of
                     match -> "$id";
                     nomatch -> Part
                 end || Part <- string:lexemes(Key, ".")], ".").

%% All the examples together make a configuration the plugin accepts, with their values.
examples_together_pass_the_plugins_validation_test() ->
    %% The file settings name files this machine does not have (and external login needs them):
    %% parse/1 checks those against real files in emqx_rabbitmq_hook_config_tests.
    NeedFiles = ["rabbitmq_hook.password_file", "rabbitmq_hook.tls.cacertfile", "rabbitmq_hook.tls.certfile",
                 "rabbitmq_hook.tls.keyfile", "rabbitmq_hook.auth_mechanism"],
    %% queues = off and the queue lines of another example contradict each other.
    Contradicting = ["rabbitmq_hook.queues"],
    {ok, Env} = translate([S || {Settings, _, _} <- conf_examples(), S = {Key, _} <- Settings,
                                not lists:member(Key, NeedFiles ++ Contradicting)]),
    {ok, Config} = emqx_rabbitmq_hook_config:parse(Env),
    ?assertMatch(#{servers := [{<<"r1">>, 5672}, {<<"::1">>, 5671}, {<<"r3">>, 5672}], password := <<"p#ss w0rd">>,
                   exchange_type := <<"fanout">>, queue_type := <<"quorum">>, publishers := 4, heartbeat := 0,
                   publish_topics := [<<"sensors/+/temp">>, <<"$SYS/#">>], node := <<"emqx@10.0.0.1">>}, Config).

%% {setting, value, who names it}: cuttlefish for a value of the wrong kind, the plugin's own
%% validation for a value of the right kind that it refuses.
wrong_values() ->
    [{"rabbitmq_hook.publishers", "many", cuttlefish},
     {"rabbitmq_hook.publishers", "99", publishers},
     {"rabbitmq_hook.servers", "localhost:99999", servers},
     {"rabbitmq_hook.servers", " , ", cuttlefish},
     {"rabbitmq_hook.heartbeat", "soon", cuttlefish},
     {"rabbitmq_hook.heartbeat", "00s", cuttlefish},
     {"rabbitmq_hook.drain_timeout", "soon", cuttlefish},
     {"rabbitmq_hook.drain_timeout", "off", cuttlefish},
     {"rabbitmq_hook.reconnect_min", "off", cuttlefish},
     {"rabbitmq_hook.exchange_type", "headers", cuttlefish},
     {"rabbitmq_hook.queue_mode", "eager", cuttlefish},
     {"rabbitmq_hook.queue_version", "3", queue_version},
     {"rabbitmq_hook.events.message_publish.enable", "maybe", cuttlefish},
     {"rabbitmq_hook.events.message_publish.routing_key", "m.${nope}", routing_keys},
     {"rabbitmq_hook.queue.2.bindings", "x", cuttlefish},
     {"rabbitmq_hook.queues", "none", cuttlefish},
     {"rabbitmq_hook.publish_topics", "a/#/b", publish_topics},
     {"rabbitmq_hook.spool.max_size", "big", cuttlefish},
     {"rabbitmq_hook.confirm_window", "0", confirm_window},
     {"rabbitmq_hook.nope", "1", cuttlefish}].

wrong_value_is_named_test_() ->
    [{Key ++ " = " ++ Value, fun() -> wrong_value(Key, Value, Who) end} || {Key, Value, Who} <- wrong_values()].

wrong_value(Key, Value, cuttlefish) ->
    {cuttlefish, Lines} = translate([{Key, Value}]),
    %% "rabbitmq_hook.queue.2.bindings" is reported as "rabbitmq_hook.queue.2".
    Named = string:join(lists:sublist(string:lexemes(Key, "."), 3), "."),
    ?assert(lists:any(fun(Line) -> string:find(Line, Named) =/= nomatch end, Lines));
wrong_value(Key, Value, EnvKey) ->
    {ok, Env} = translate([{Key, Value}]),
    {error, Error} = emqx_rabbitmq_hook_config:parse(Env),
    ?assertMatch({EnvKey, _}, Error),
    ?assertMatch(<<"invalid value for ", _/binary>>, emqx_rabbitmq_hook_config:format_error(Error)).

%% cuttlefish's duration refuses zero, which the plugin takes (heartbeat 0: no heartbeats;
%% drain_timeout 0: no wait at stop), as on EMQX 5.
zero_durations_reach_the_env_test_() ->
    [{Key ++ " = " ++ Value,
      fun() ->
              {ok, Env} = translate([{Key, Value}]),
              ?assertEqual(0, proplists:get_value(EnvKey, Env)),
              ?assertMatch({ok, #{EnvKey := 0}}, emqx_rabbitmq_hook_config:parse(Env))
      end}
     || {Key, EnvKey} <- [{"rabbitmq_hook.heartbeat", heartbeat}, {"rabbitmq_hook.drain_timeout", drain_timeout_ms}],
        Value <- ["0", "0ms", "0s", "0m", "0h", "0d"]].

%% As on EMQX 5, where leaving queues out gives the default: a conf file whose queue lines are
%% all commented out declares the plugin's default queue, and only queues = off declares none.
no_queue_line_declares_the_default_queue_test() ->
    Default = proplists:get_value(queues, emqx_rabbitmq_hook_config:defaults()),
    WithoutQueues = [{string:join(Key, "."), Value} || {Key = [_, Name | _], Value} <- conf_settings(false),
                                                        Name =/= "queue"],
    ?assertEqual({ok, Default}, value(queues, translate(WithoutQueues))),
    ?assertEqual({ok, Default}, value(queues, translate([]))),
    ?assertEqual({ok, []}, value(queues, translate([{"rabbitmq_hook.queues", "off"} | WithoutQueues]))).

queues_off_beside_a_queue_line_is_refused_test() ->
    {cuttlefish, Lines} = translate([{"rabbitmq_hook.queues", "off"}, {"rabbitmq_hook.queue.1.name", "audit"}]),
    ?assert(lists:any(fun(Line) -> string:find(Line, "rabbitmq_hook.queues = off") =/= nomatch end, Lines)).

%%--------------------------------------------------------------------
%% EMQX 5: config.hocon, the translation table and config_schema.avsc
%%--------------------------------------------------------------------

hocon_defaults() ->
    erh_hocon:file(path("priv/config.hocon")).

avsc() ->
    {ok, Json} = file:read_file(path("priv/config_schema.avsc")),
    jsx:decode(Json, [return_maps]).

hocon_file_sets_the_defaults_test() ->
    {ok, Env} = emqx_rabbitmq_hook_hocon:to_env(hocon_defaults()),
    ?assertEqual(emqx_rabbitmq_hook_config:parse([]), emqx_rabbitmq_hook_config:parse(Env)),
    ?assertEqual(lists:sort(known_keys() -- [node]), lists:sort([K || {K, _} <- Env])).

%% EMQX 4 and EMQX 5 operators start from the same configuration ("" in config.hocon is a line
%% left commented out in the conf file).
both_default_files_mean_the_same_configuration_test() ->
    {ok, Hocon} = emqx_rabbitmq_hook_hocon:to_env(hocon_defaults()),
    ?assertEqual(normalize(lists:sort(conf_env())), normalize(lists:sort([KV || KV = {_, V} <- Hocon, V =/= <<>>]))).

%% Strings as binaries, names as binaries: the two files' values in one form.
normalize(true) -> true;
normalize(false) -> false;
normalize(Atom) when is_atom(Atom) -> atom_to_binary(Atom, utf8);
normalize(Map) when is_map(Map) -> maps:from_list(normalize(maps:to_list(Map)));
normalize({K, V}) -> {normalize(K), normalize(V)};
normalize([C | _] = List) when is_integer(C) -> unicode:characters_to_binary(List);
normalize(List) when is_list(List) -> [normalize(E) || E <- List];
normalize(Other) -> Other.

every_path_of_the_table_is_in_the_hocon_file_and_the_avsc_test() ->
    Hocon = hocon_defaults(),
    Avsc = avsc(),
    [?assertEqual({Path, true, true}, {Path, has_path(Path, Hocon), avsc_has_path(Path, Avsc)})
     || {Path, _, _} <- emqx_rabbitmq_hook_hocon:fields()].

has_path([], _) -> true;
has_path([Key | Rest], Map) when is_map(Map) -> maps:is_key(Key, Map) andalso has_path(Rest, maps:get(Key, Map));
has_path(_, _) -> false.

avsc_has_path([], _) ->
    true;
avsc_has_path([Name | Rest], #{<<"type">> := <<"record">>, <<"fields">> := Fields}) ->
    case [F || F = #{<<"name">> := N} <- Fields, N =:= Name] of
        [#{<<"type">> := Type}] -> avsc_has_path(Rest, Type);
        [] -> false
    end;
avsc_has_path(_, _) ->
    false.

%% The one test that catches a forgotten key: each key of defaults() has a setting in the EMQX 4
%% schema and one in the EMQX 5 table (whose paths the test above finds in config.hocon and the
%% avsc); and neither maps to a key the plugin does not have.
every_key_of_defaults_has_a_setting_in_both_schemas_test() ->
    {Translations, Mappings, _} = schema(),
    Emqx4 = lists:usort([env_key(cuttlefish_mapping:mapping(M)) || M <- Mappings]
                        ++ [env_key(cuttlefish_translation:mapping(T)) || T <- Translations]),
    Emqx5 = lists:usort([Key || {_, Key, _} <- emqx_rabbitmq_hook_hocon:fields()]),
    Defaults = lists:usort([Key || {Key, _} <- emqx_rabbitmq_hook_config:defaults()]),
    ?assertEqual({emqx4, []}, {emqx4, Defaults -- Emqx4}),
    ?assertEqual({emqx5, []}, {emqx5, Defaults -- Emqx5}),
    ?assertEqual({emqx4, []}, {emqx4, Emqx4 -- known_keys()}),
    ?assertEqual({emqx5, []}, {emqx5, Emqx5 -- known_keys()}).

env_key("emqx_rabbitmq_hook." ++ Key) -> list_to_atom(Key).

%% What EMQX's avro library would check when it installs the package or takes a change: names,
%% a default of the right type for each field, and config.hocon valid against the schema, with
%% the same values as the defaults (the dashboard shows those).
avsc_is_valid_and_agrees_with_the_hocon_file_test() ->
    Avsc = avsc(),
    Names = named_types(Avsc, #{}),
    ?assert(lists:all(fun valid_name/1, maps:keys(Names))),
    ?assertEqual(ok, check_defaults(Avsc, Names)),
    ?assertEqual(ok, avro_check(Avsc, hocon_defaults(), Names)),
    ?assertEqual(hocon_defaults(), avro_default(Avsc, Names)).

%% Named types (records, enums) by name; a name defined twice is an error.
named_types(#{<<"type">> := Kind, <<"name">> := Name} = Type, Acc) when Kind =:= <<"record">>; Kind =:= <<"enum">> ->
    ?assertNot(maps:is_key(Name, Acc)),
    Fields = maps:get(<<"fields">>, Type, []),
    lists:foldl(fun(#{<<"name">> := FieldName, <<"type">> := T}, A) ->
                        ?assert(valid_name(FieldName)),
                        named_types(T, A)
                end, Acc#{Name => Type}, Fields);
named_types(#{<<"type">> := <<"array">>, <<"items">> := Items}, Acc) ->
    named_types(Items, Acc);
named_types(_Primitive, Acc) ->
    Acc.

valid_name(Name) ->
    re:run(Name, <<"^[A-Za-z_][A-Za-z0-9_]*$">>, [{capture, none}]) =:= match.

check_defaults(#{<<"type">> := <<"record">>, <<"fields">> := Fields}, Names) ->
    lists:foldl(fun(F, ok) -> check_field_default(F, Names);
                   (_, Error) -> Error
                end, ok, Fields);
check_defaults(#{<<"type">> := <<"array">>, <<"items">> := Items}, Names) ->
    check_defaults(Items, Names);
check_defaults(_, _) ->
    ok.

check_field_default(#{<<"name">> := Name, <<"type">> := Type} = Field, Names) ->
    case maps:find(<<"default">>, Field) of
        {ok, Default} ->
            case avro_check(Type, Default, Names) of
                ok -> check_defaults(resolve(Type, Names), Names);
                Error -> {Name, Error}
            end;
        %% Fields inside array items (a queue's name) have no default: each item gives them.
        error ->
            check_defaults(resolve(Type, Names), Names)
    end.

resolve(Name, Names) when is_binary(Name) -> maps:get(Name, Names, Name);
resolve(Type, _) -> Type.

avro_check(Type, Value, Names) when is_binary(Type), is_map_key(Type, Names) ->
    avro_check(maps:get(Type, Names), Value, Names);
avro_check(<<"string">>, V, _) when is_binary(V) -> ok;
avro_check(<<"int">>, V, _) when is_integer(V), V >= -(1 bsl 31), V < 1 bsl 31 -> ok;
avro_check(<<"boolean">>, V, _) when is_boolean(V) -> ok;
avro_check(#{<<"type">> := <<"enum">>, <<"symbols">> := Symbols}, V, _) ->
    check(lists:member(V, Symbols), {not_a_symbol, V});
avro_check(#{<<"type">> := <<"array">>, <<"items">> := Items}, V, Names) when is_list(V) ->
    first_error([avro_check(Items, E, Names) || E <- V]);
avro_check(#{<<"type">> := <<"record">>, <<"fields">> := Fields}, V, Names) when is_map(V) ->
    Known = [N || #{<<"name">> := N} <- Fields],
    first_error([check(maps:keys(V) -- Known =:= [], {unknown_fields, maps:keys(V) -- Known})
                 | [case maps:find(N, V) of
                        {ok, FV} -> avro_check(T, FV, Names);
                        error -> check(maps:is_key(<<"default">>, F), {missing, N})
                    end || F = #{<<"name">> := N, <<"type">> := T} <- Fields]]);
avro_check(Type, V, _) ->
    {Type, V}.

check(true, _) -> ok;
check(false, Error) -> Error.

first_error(Results) ->
    case [R || R <- Results, R =/= ok] of
        [] -> ok;
        [Error | _] -> Error
    end.

%% The value a record takes when every field keeps its default.
avro_default(#{<<"type">> := <<"record">>, <<"fields">> := Fields}, _Names) ->
    maps:from_list([{N, D} || #{<<"name">> := N, <<"default">> := D} <- Fields]).
