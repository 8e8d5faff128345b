%% Table-driven tests of the EMQX 5 configuration translation: every shape a value may come in,
%% the env it becomes, and an error naming the setting for every kind of bad value.
-module(emqx_rabbitmq_hook_hocon_tests).

-include_lib("eunit/include/eunit.hrl").

-define(M, emqx_rabbitmq_hook_hocon).

%% {Config, Env}: the env holds exactly these keys, in the order of fields/0.
translated() ->
    [{#{}, []},
     {#{<<"servers">> => [<<"a:1">>, <<"[::1]:5671">>]}, [{servers, [<<"a:1">>, <<"[::1]:5671">>]}]},
     {#{<<"servers">> => <<"a:1, b:2,,">>}, [{servers, [<<"a:1">>, <<"b:2">>]}]},
     {#{<<"username">> => <<"u">>, <<"password">> => <<"p">>, <<"vhost">> => <<"/v">>},
      [{username, <<"u">>}, {password, <<"p">>}, {vhost, <<"/v">>}]},
     {#{<<"password_file">> => <<>>}, [{password_file, <<>>}]},
     {#{<<"auth_mechanism">> => <<"external">>}, [{auth_mechanism, <<"external">>}]},
     {#{<<"heartbeat">> => <<"30s">>}, [{heartbeat, 30}]},
     {#{<<"heartbeat">> => <<"2m">>}, [{heartbeat, 120}]},
     {#{<<"heartbeat">> => <<"1500ms">>}, [{heartbeat, 2}]},
     {#{<<"heartbeat">> => <<"off">>}, [{heartbeat, 0}]},
     {#{<<"heartbeat">> => 0}, [{heartbeat, 0}]},
     {#{<<"connect_timeout">> => <<" 5s ">>}, [{connect_timeout_ms, 5000}]},
     {#{<<"reconnect_min">> => <<"500ms">>, <<"reconnect_max">> => <<"1h">>},
      [{reconnect_min_ms, 500}, {reconnect_max_ms, 3600000}]},
     {#{<<"drain_timeout">> => 0}, [{drain_timeout_ms, 0}]},
     {#{<<"drain_timeout">> => <<"1d">>}, [{drain_timeout_ms, 86400000}]},
     {#{<<"tls">> => #{<<"enable">> => true, <<"cacertfile">> => <<"/ca.pem">>, <<"certfile">> => <<>>,
                       <<"keyfile">> => <<>>, <<"verify">> => false, <<"server_name">> => <<"r">>}},
      [{tls_enable, true}, {tls_cacertfile, <<"/ca.pem">>}, {tls_certfile, <<>>}, {tls_keyfile, <<>>},
       {tls_verify, false}, {tls_server_name, <<"r">>}]},
     {#{<<"exchange">> => <<"ex">>, <<"exchange_type">> => <<"fanout">>},
      [{exchange, <<"ex">>}, {exchange_type, <<"fanout">>}]},
     {#{<<"queues">> => []}, [{queues, []}]},
     {#{<<"queues">> => [#{<<"name">> => <<"q1">>, <<"bindings">> => [<<"a.#">>, <<"b">>]},
                         #{<<"name">> => <<"q2">>}]},
      [{queues, [{<<"q1">>, [<<"a.#">>, <<"b">>]}, {<<"q2">>, [<<"#">>]}]}]},
     {#{<<"queue_type">> => <<"quorum">>}, [{queue_type, <<"quorum">>}]},
     {#{<<"queue_mode">> => <<"default">>, <<"queue_version">> => 0}, [{queue_mode, <<"default">>}, {queue_version, 0}]},
     {#{<<"unroutable_queue">> => <<>>}, [{unroutable_queue, <<>>}]},
     {#{<<"events">> => #{}},
      [{events, [client_connected, client_disconnected, message_publish]}, {routing_keys, #{}}]},
     {#{<<"events">> => #{<<"client_connected">> => #{<<"enable">> => false},
                          <<"message_publish">> => #{<<"enable">> => true, <<"routing_key">> => <<"m.${topic}">>}}},
      [{events, [client_disconnected, message_publish]}, {routing_keys, #{message_publish => <<"m.${topic}">>}}]},
     {#{<<"publish_topics">> => [<<"a/+">>, <<"$SYS/#">>]}, [{publish_topics, [<<"a/+">>, <<"$SYS/#">>]}]},
     {#{<<"payload_encoding">> => <<"base64">>}, [{payload_encoding, <<"base64">>}]},
     {#{<<"max_payload_size">> => <<"1MB">>}, [{max_payload_bytes, 1048576}]},
     {#{<<"max_payload_size">> => <<"512kb">>}, [{max_payload_bytes, 524288}]},
     {#{<<"max_payload_size">> => 100}, [{max_payload_bytes, 100}]},
     {#{<<"node">> => <<>>}, []},
     {#{<<"node">> => <<"emqx@host">>}, [{node, <<"emqx@host">>}]},
     {#{<<"publishers">> => 4, <<"confirm_window">> => 64, <<"buffer_events">> => 10},
      [{publishers, 4}, {confirm_window, 64}, {buffer_events, 10}]},
     {#{<<"spool">> => #{<<"dir">> => <<"/var/spool">>, <<"max_size">> => <<"2GB">>, <<"sync">> => <<"always">>,
                         <<"sync_interval">> => <<"250ms">>}},
      [{spool_dir, <<"/var/spool">>}, {spool_max_bytes, 2147483648}, {spool_sync, <<"always">>},
       {spool_sync_interval_ms, 250}]},
     {#{<<"presence">> => #{<<"enable">> => true}}, [{presence, true}]},
     {#{<<"redis">> => #{<<"server">> => <<"r:6379">>, <<"username">> => <<>>, <<"password">> => <<"x">>,
                         <<"db">> => 3, <<"key_prefix">> => <<"p:">>}},
      [{redis_server, <<"r:6379">>}, {redis_username, <<>>}, {redis_password, <<"x">>}, {redis_db, 3},
       {redis_key_prefix, <<"p:">>}]},
     {#{<<"events">> => #{<<"client_connected">> => #{}}}, [{events, [client_connected, client_disconnected, message_publish]}, {routing_keys, #{}}]}].

translated_test_() ->
    [?_assertEqual({Config, {ok, Env}}, {Config, ?M:to_env(Config)}) || {Config, Env} <- translated()].

%% {Config, Path of the error}
rejected() ->
    [{#{<<"servers">> => 5}, [<<"servers">>]},
     {#{<<"servers">> => [<<"a">>, 5]}, [<<"servers">>]},
     {#{<<"username">> => 42}, [<<"username">>]},
     {#{<<"heartbeat">> => <<"30x">>}, [<<"heartbeat">>]},
     {#{<<"heartbeat">> => <<"1h30m">>}, [<<"heartbeat">>]},
     {#{<<"heartbeat">> => -1}, [<<"heartbeat">>]},
     {#{<<"heartbeat">> => 15}, [<<"heartbeat">>]},
     {#{<<"drain_timeout">> => 5}, [<<"drain_timeout">>]},
     {#{<<"reconnect_min">> => <<"off">>}, [<<"reconnect_min">>]},
     {#{<<"tls">> => #{<<"enable">> => <<"yes">>}}, [<<"tls">>, <<"enable">>]},
     {#{<<"queues">> => [#{<<"bindings">> => [<<"#">>]}]}, [<<"queues">>]},
     {#{<<"queues">> => [#{<<"name">> => <<"q">>, <<"bindings">> => [1]}]}, [<<"queues">>]},
     {#{<<"queues">> => #{}}, [<<"queues">>]},
     {#{<<"events">> => #{<<"message_publish">> => #{<<"enable">> => 1}}}, [<<"events">>]},
     {#{<<"events">> => #{<<"client_connected">> => #{<<"routing_key">> => 7}}}, [<<"events">>]},
     {#{<<"events">> => []}, [<<"events">>]},
     {#{<<"max_payload_size">> => <<"1XB">>}, [<<"max_payload_size">>]},
     {#{<<"publishers">> => <<"4">>}, [<<"publishers">>]},
     {#{<<"spool">> => #{<<"max_size">> => <<"lots">>}}, [<<"spool">>, <<"max_size">>]},
     {#{<<"redis">> => #{<<"db">> => <<"0">>}}, [<<"redis">>, <<"db">>]}].

rejected_test_() ->
    [?_assertMatch({Config, {error, {Path, {bad_value, _, _}}}}, {Config, ?M:to_env(Config)})
     || {Config, Path} <- rejected()].

%% A setting no row has, at any depth, is refused and named as written: a misspelt one would leave
%% its default in force.
unknown_settings_are_refused_by_their_path_test_() ->
    Unknown = [{#{<<"unknown">> => 1}, <<"unknown">>},
               {#{<<"presence">> => #{<<"enabel">> => true}}, <<"presence.enabel">>},
               {#{<<"spool">> => #{<<"dir">> => <<"d">>, <<"max_sise">> => <<"1GB">>}}, <<"spool.max_sise">>},
               {#{<<"events">> => #{<<"client_conected">> => #{<<"enable">> => false}}}, <<"events.client_conected">>},
               {#{<<"events">> => #{<<"message_publish">> => #{<<"routingkey">> => <<"m">>}}},
                <<"events.message_publish.routingkey">>},
               {#{<<"queues">> => [#{<<"name">> => <<"q">>, <<"binding">> => [<<"a">>]}]}, <<"queues.binding">>},
               {#{<<"tls">> => #{<<"enable">> => true, <<"verfy">> => false}}, <<"tls.verfy">>}],
    [?_assertEqual({Config, <<"unknown setting ", Name/binary>>},
                   {Config, begin {error, E} = ?M:to_env(Config), ?M:format_error(E) end})
     || {Config, Name} <- Unknown].

%% A password HOCON read as a number (written unquoted) is refused without its value.
secrets_are_not_shown_when_refused_test_() ->
    [?_assertEqual(<<"invalid value for ", Name/binary, ": the value (not shown) is not a string">>,
                   begin {error, E} = ?M:to_env(Config), ?M:format_error(E) end)
     || {Config, Name} <- [{#{<<"password">> => 12345678}, <<"password">>},
                           {#{<<"redis">> => #{<<"password">> => 12345678}}, <<"redis.password">>}]].

error_line_names_the_setting_as_written_test() ->
    {error, Error} = ?M:to_env(#{<<"spool">> => #{<<"max_size">> => <<"lots">>}}),
    ?assertEqual(<<"invalid value for spool.max_size: <<\"lots\">> is not a size such as 512KB, 1MB or 1GB">>,
                 ?M:format_error(Error)).

every_env_key_comes_from_one_row_test() ->
    Keys = [Key || {_, Key, _} <- ?M:fields()],
    ?assertEqual(length(Keys), length(lists:usort(Keys))).

%% What EMQX hands over translates into an env the plugin accepts, with the values it means.
translated_env_passes_the_plugins_validation_test() ->
    {ok, Env} = ?M:to_env(#{<<"servers">> => [<<"r1:5672">>, <<"r2">>], <<"exchange_type">> => <<"direct">>,
                            <<"heartbeat">> => <<"off">>, <<"queues">> => [#{<<"name">> => <<"q">>}],
                            <<"events">> => #{<<"client_connected">> => #{<<"enable">> => false},
                                              <<"message_publish">> => #{<<"routing_key">> => <<"m">>}},
                            <<"payload_encoding">> => <<"base64">>, <<"reconnect_min">> => <<"1s">>,
                            <<"reconnect_max">> => <<"1m">>}),
    {ok, Config} = emqx_rabbitmq_hook_config:parse(Env),
    ?assertMatch(#{servers := [{<<"r1">>, 5672}, {<<"r2">>, 5672}], exchange_type := <<"direct">>, heartbeat := 0,
                   queues := [{<<"q">>, [<<"#">>]}], events := [client_disconnected, message_publish],
                   routing_keys := #{message_publish := <<"m">>, client_connected := <<"client.connected">>},
                   payload_encoding := base64, reconnect_min_ms := 1000, reconnect_max_ms := 60000}, Config).

values_the_plugin_refuses_are_named_by_its_validation_test() ->
    {ok, Env} = ?M:to_env(#{<<"exchange_type">> => <<"headers">>}),
    ?assertMatch({error, {exchange_type, _}}, emqx_rabbitmq_hook_config:parse(Env)).

%% The plugin's validation judges env keys; an EMQX 5 operator reads the setting they wrote.
refused_values_are_named_by_the_setting_as_written_test_() ->
    Refused = fun(Config) ->
                      {ok, Env} = ?M:to_env(Config),
                      {error, Error} = emqx_rabbitmq_hook_config:parse(Env),
                      emqx_rabbitmq_hook_config:format_error(Error, fun ?M:setting/1)
              end,
    [?_assertMatch(<<"invalid value for max_payload_size: 1073741824 is not in ", _/binary>>,
                   Refused(#{<<"max_payload_size">> => <<"1GB">>})),
     ?_assertMatch(<<"invalid value for presence.node_ttl: ", _/binary>>,
                   Refused(#{<<"presence">> => #{<<"node_ttl">> => <<"10ms">>}})),
     ?_assertMatch(<<"invalid value for redis.password: it is not a string", _/binary>>,
                   emqx_rabbitmq_hook_config:format_error({redis_password, <<"x", 0>>}, fun ?M:setting/1)),
     ?_assertEqual(<<"connect_timeout">>, ?M:setting(connect_timeout_ms)),
     ?_assertEqual(<<"spool.max_size">>, ?M:setting(spool_max_bytes)),
     ?_assertEqual(<<"events">>, ?M:setting(routing_keys))].
