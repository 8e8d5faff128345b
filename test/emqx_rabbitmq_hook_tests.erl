%% The plugin end to end: EMQX-shaped hook calls in, messages read back from a real RabbitMQ.
-module(emqx_rabbitmq_hook_tests).

-include_lib("eunit/include/eunit.hrl").

%% Reading back, for the other end-to-end test modules.
-export([receive_json/2]).

-define(NODE, <<"emqx@127.0.0.1">>).

-import(erh_test_emqx, [clientinfo/3, conninfo/4, disconninfo/5, message/5, message/6]).

%%--------------------------------------------------------------------
%% Fixture: one RabbitMQ for the module; each test gets its own exchange and queue
%%--------------------------------------------------------------------

plugin_test_() ->
    erh_test_fixture:each(fun erh_test_rabbit:start/0, fun erh_test_rabbit:stop/1, 60, tests(), fun run/2).

tests() ->
    [fun connected_event_from_emqx4_has_every_field_and_property/1,
     fun connected_event_from_emqx5_has_every_field/1,
     fun connected_event_from_a_gateway_keeps_its_text_proto_ver/1,
     fun disconnected_event_renders_every_reason_shape/1,
     fun peer_addresses_are_written_as_inet_writes_them/1,
     fun publish_event_from_emqx4_and_emqx5_records/1,
     fun absent_username_becomes_null/1,
     fun non_utf8_payload_arrives_base64/1,
     fun payload_encoding_base64_encodes_every_payload/1,
     fun disabled_events_are_not_sent_and_not_hooked/1,
     fun topics_outside_the_filters_are_not_sent/1,
     fun sys_topics_are_skipped_unless_a_filter_names_them/1,
     fun routing_key_templates_fill_in_the_event/1,
     fun each_clients_events_arrive_in_order_across_publishers/1,
     fun unexpected_shapes_are_counted_as_malformed/1,
     fun hooks_return_at_once_while_rabbitmq_is_unreachable/1,
     fun stats_report_every_counter/1,
     fun invalid_config_refuses_to_start_naming_the_key/1,
     fun classic_queues_are_lazy_and_of_version_2_unless_told_otherwise/1,
     fun quorum_queues_get_only_their_type/1,
     fun rabbitmqs_own_amq_topic_exchange_takes_the_events/1,
     fun messages_survive_a_rabbitmq_restart/1].

run(Test, Rabbit) ->
    Unique = integer_to_binary(erlang:unique_integer([positive])),
    Ctx = #{rabbit => Rabbit, exchange => <<"test.ex.", Unique/binary>>,
            queue => <<"test.q.", Unique/binary>>},
    try Test(Ctx)
    after erh_test_rabbit:stop_plugin()
    end.

start(Ctx = #{rabbit := Rabbit, exchange := Ex, queue := Q}, Overrides) ->
    Env = erh_test_rabbit:plugin_env(Rabbit, [{node, ?NODE}, {exchange, Ex}, {queues, [{Q, ["#"]}]}
                                              | Overrides]),
    {ok, _} = erh_test_rabbit:start_plugin(Env),
    Ctx.

start(Ctx) -> start(Ctx, []).

%% Wait until the plugin has every accepted event confirmed, then read N messages.
receive_json(#{rabbit := Rabbit, queue := Q}, N) ->
    wait_confirmed(),
    erh_test_rabbit:fetch_json(Rabbit, Q, N).

wait_confirmed() ->
    ?assert(erh_test_rabbit:wait_for(
              fun() ->
                      S = emqx_rabbitmq_hook:stats(),
                      maps:get(confirmed, S) >= maps:get(queued, S)
              end, 20000, 20)).

%% A connected event sent through the plugin and read back: the queues are declared and bound.
one_event_through(Ctx) ->
    ok = emqx_rabbitmq_hook:on_client_connected(clientinfo(emqx5, <<"dev-1">>, <<"alice">>),
                                                conninfo(emqx5, <<"dev-1">>, <<"alice">>, 1700000000001), []),
    [#{json := #{<<"clientid">> := <<"dev-1">>}}] = receive_json(Ctx, 1).

%% The queue holds nothing more (after what was read).
assert_empty(#{rabbit := Rabbit, queue := Q}) ->
    ?assertEqual(0, erh_test_rabbit:queue_length(Rabbit, Q)).

%%--------------------------------------------------------------------
%% Tests
%%--------------------------------------------------------------------

connected_event_from_emqx4_has_every_field_and_property(Ctx0) ->
    Ctx = start(Ctx0),
    ok = emqx_rabbitmq_hook:on_client_connected(clientinfo(emqx4, <<"dev-1">>, <<"alice">>),
                                                conninfo(emqx4, <<"dev-1">>, <<"alice">>, 1700000000001), []),
    [#{json := J, props := P, routing_key := Key}] = receive_json(Ctx, 1),
    Pid = list_to_binary(pid_to_list(self())),
    ?assertEqual(#{<<"action">> => <<"client_connected">>, <<"node">> => ?NODE,
                   <<"clientid">> => <<"dev-1">>, <<"username">> => <<"alice">>,
                   <<"ipaddress">> => <<"192.168.7.21">>, <<"peerport">> => 52311, <<"keepalive">> => 60,
                   <<"proto_name">> => <<"MQTT">>, <<"proto_ver">> => 4, <<"clean_start">> => true,
                   <<"connected_at">> => 1700000000001,
                   <<"conn_id">> => <<?NODE/binary, "/", Pid/binary, "/1700000000001">>,
                   <<"seq">> => 1}, J),
    ?assertEqual(<<"client.connected">>, Key),
    ?assertMatch(#{content_type := <<"application/json">>, delivery_mode := 2, timestamp := 1700000000,
                   type := <<"client.connected">>, app_id := <<"emqx">>,
                   headers := #{<<"clientid">> := <<"dev-1">>, <<"node">> := ?NODE}}, P),
    ?assertMatch(<<"emqx@127.0.0.1-", _/binary>>, maps:get(message_id, P)),
    assert_empty(Ctx).

connected_event_from_emqx5_has_every_field(Ctx0) ->
    Ctx = start(Ctx0),
    ok = emqx_rabbitmq_hook:on_client_connected(clientinfo(emqx5, <<"dev-5">>, <<"bob">>),
                                                conninfo(emqx5, <<"dev-5">>, <<"bob">>, 1700000000555), []),
    [#{json := J}] = receive_json(Ctx, 1),
    ?assertMatch(#{<<"action">> := <<"client_connected">>, <<"clientid">> := <<"dev-5">>,
                   <<"username">> := <<"bob">>, <<"proto_ver">> := 5, <<"connected_at">> := 1700000000555},
                 J).

%% EMQX 5's gateways run the same hooks; their protocol version is text (MQTT-SN 1.2, LwM2M 1.0.1).
connected_event_from_a_gateway_keeps_its_text_proto_ver(Ctx0) ->
    Ctx = start(Ctx0),
    Gateway = fun(Id, Name, Ver) ->
                      ConnInfo = conninfo(emqx5, Id, undefined, 1700000000777),
                      ok = emqx_rabbitmq_hook:on_client_connected(
                             (clientinfo(emqx5, Id, undefined))#{protocol => 'mqtt-sn'},
                             ConnInfo#{proto_name => Name, proto_ver => Ver}, [])
              end,
    Gateway(<<"sn-1">>, <<"MQTT-SN">>, <<"1.2">>),
    Gateway(<<"lw-1">>, <<"LwM2M">>, <<"1.0.1">>),
    [#{json := Sn}, #{json := Lw}] = receive_json(Ctx, 2),
    ?assertMatch(#{<<"clientid">> := <<"sn-1">>, <<"proto_name">> := <<"MQTT-SN">>, <<"proto_ver">> := <<"1.2">>},
                 Sn),
    ?assertMatch(#{<<"proto_name">> := <<"LwM2M">>, <<"proto_ver">> := <<"1.0.1">>}, Lw),
    ?assertMatch(#{malformed := 0}, emqx_rabbitmq_hook:stats()).

disconnected_event_renders_every_reason_shape(Ctx0) ->
    Ctx = start(Ctx0),
    Reasons = [{normal, <<"normal">>}, {{shutdown, discarded}, <<"discarded">>},
               {takeovered, <<"takeovered">>}, {{tcp_error, {econnreset, "x"}}, <<"{tcp_error,{econnreset,\"x\"}}">>}],
    [ok = emqx_rabbitmq_hook:on_client_disconnected(
            clientinfo(V, <<"dev-2">>, <<"carol">>), Reason,
            disconninfo(V, <<"dev-2">>, <<"carol">>, 1700000000001, 1700000009999), [])
     || {Reason, _} <- Reasons, V <- [emqx4]],
    Got = receive_json(Ctx, length(Reasons)),
    ?assertEqual([R || {_, R} <- Reasons], [maps:get(<<"reason">>, J) || #{json := J} <- Got]),
    [#{json := J1, props := P1, routing_key := Key} | _] = Got,
    Pid = list_to_binary(pid_to_list(self())),
    ?assertEqual(#{<<"action">> => <<"client_disconnected">>, <<"node">> => ?NODE,
                   <<"clientid">> => <<"dev-2">>, <<"username">> => <<"carol">>,
                   <<"ipaddress">> => <<"192.168.7.21">>, <<"reason">> => <<"normal">>,
                   <<"connected_at">> => 1700000000001, <<"disconnected_at">> => 1700000009999,
                   <<"conn_id">> => <<?NODE/binary, "/", Pid/binary, "/1700000000001">>,
                   <<"seq">> => 1}, J1),
    ?assertEqual(<<"client.disconnected">>, Key),
    ?assertMatch(#{type := <<"client.disconnected">>, timestamp := 1700000009, delivery_mode := 2}, P1).

peer_addresses_are_written_as_inet_writes_them(Ctx0) ->
    Ctx = start(Ctx0),
    Hosts = [{0, 0, 0, 0}, {255, 255, 255, 255}, {10, 0, 100, 9}, {0, 0, 0, 0, 0, 0, 0, 1},
             {16#fe80, 0, 0, 0, 16#abcd, 0, 0, 1}, {0, 0, 0, 0, 0, 16#ffff, 16#c0a8, 1}],
    [ok = emqx_rabbitmq_hook:on_client_connected((clientinfo(emqx5, <<"dev-ip">>, <<"u">>))#{peerhost => Host},
                                                 conninfo(emqx5, <<"dev-ip">>, <<"u">>, 1700000000001), [])
     || Host <- Hosts],
    ?assertEqual([list_to_binary(inet:ntoa(Host)) || Host <- Hosts],
                 [maps:get(<<"ipaddress">>, J) || #{json := J} <- receive_json(Ctx, length(Hosts))]).

publish_event_from_emqx4_and_emqx5_records(Ctx0) ->
    Ctx = start(Ctx0),
    M4 = message(emqx4, <<"dev-3">>, <<"dave">>, <<"sensors/3/temp">>, <<"{\"t\":21.5}">>,
                 #{retain => true, dup => false}),
    M5 = message(emqx5, <<"dev-3">>, <<"dave">>, <<"sensors/3/hum">>, <<"55">>),
    ?assertEqual({ok, M4}, emqx_rabbitmq_hook:on_message_publish(M4, [])),
    ?assertEqual({ok, M5}, emqx_rabbitmq_hook:on_message_publish(M5, [])),
    [#{json := J4, props := P4, routing_key := Key}, #{json := J5, props := P5}] = receive_json(Ctx, 2),
    ?assertEqual(#{<<"action">> => <<"message_publish">>, <<"node">> => ?NODE,
                   <<"id">> => string:lowercase(binary:encode_hex(element(2, M4))),
                   <<"from_client_id">> => <<"dev-3">>, <<"from_username">> => <<"dave">>,
                   <<"topic">> => <<"sensors/3/temp">>, <<"qos">> => 1, <<"retain">> => true,
                   <<"payload">> => <<"{\"t\":21.5}">>, <<"payload_encoding">> => <<"plain">>,
                   <<"ts">> => 1700000000123, <<"seq">> => 1}, J4),
    ?assertEqual(<<"message.publish">>, Key),
    ?assertMatch(#{type := <<"message.publish">>, headers := #{<<"clientid">> := <<"dev-3">>}}, P4),
    ?assertMatch(#{<<"topic">> := <<"sensors/3/hum">>, <<"retain">> := false, <<"seq">> := 2,
                   <<"id">> := _}, J5),
    ?assertNotEqual(maps:get(message_id, P4), maps:get(message_id, P5)).

absent_username_becomes_null(Ctx0) ->
    Ctx = start(Ctx0),
    ok = emqx_rabbitmq_hook:on_client_connected(clientinfo(emqx4, <<"anon">>, undefined),
                                                conninfo(emqx4, <<"anon">>, undefined, 1), []),
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(message(emqx4, <<"anon">>, undefined, <<"a/b">>, <<"x">>), []),
    [#{json := C}, #{json := P}] = receive_json(Ctx, 2),
    ?assertEqual(null, maps:get(<<"username">>, C)),
    ?assertEqual(null, maps:get(<<"from_username">>, P)).

non_utf8_payload_arrives_base64(Ctx0) ->
    Ctx = start(Ctx0),
    Binary = <<255, 0, 1, 2, 200, "abc">>,
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(message(emqx4, <<"d">>, <<"u">>, <<"bin/x">>, Binary), []),
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(message(emqx4, <<"d">>, <<"u">>, <<"txt/x">>, <<"héllo"/utf8>>), []),
    [#{json := B}, #{json := T}] = receive_json(Ctx, 2),
    ?assertEqual(<<"base64">>, maps:get(<<"payload_encoding">>, B)),
    ?assertEqual(Binary, base64:decode(maps:get(<<"payload">>, B))),
    ?assertEqual(<<"plain">>, maps:get(<<"payload_encoding">>, T)),
    ?assertEqual(<<"héllo"/utf8>>, maps:get(<<"payload">>, T)).

payload_encoding_base64_encodes_every_payload(Ctx0) ->
    Ctx = start(Ctx0, [{payload_encoding, base64}]),
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(message(emqx5, <<"d">>, <<"u">>, <<"t">>, <<"plain text">>), []),
    [#{json := J}] = receive_json(Ctx, 1),
    ?assertEqual(<<"base64">>, maps:get(<<"payload_encoding">>, J)),
    ?assertEqual(<<"plain text">>, base64:decode(maps:get(<<"payload">>, J))).

disabled_events_are_not_sent_and_not_hooked(Ctx0) ->
    Ctx = start(Ctx0, [{events, [message_publish]}]),
    ok = emqx_rabbitmq_hook:on_client_connected(clientinfo(emqx4, <<"c">>, <<"u">>), conninfo(emqx4, <<"c">>, <<"u">>, 1), []),
    ok = emqx_rabbitmq_hook:on_client_disconnected(clientinfo(emqx4, <<"c">>, <<"u">>), normal,
                                                   disconninfo(emqx4, <<"c">>, <<"u">>, 1, 2), []),
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(message(emqx4, <<"c">>, <<"u">>, <<"t/1">>, <<"p">>), []),
    [#{json := J}] = receive_json(Ctx, 1),
    ?assertEqual(<<"message_publish">>, maps:get(<<"action">>, J)),
    ?assertMatch(#{received := 3, filtered := 2, queued := 1}, emqx_rabbitmq_hook:stats()),
    assert_empty(Ctx).

%% load/1 registers the hooks of these events: presence needs the client events even when
%% RabbitMQ does not get them.
hooked_events_include_what_presence_needs_test_() ->
    Hooked = fun(Env) ->
                     {ok, Config} = emqx_rabbitmq_hook_config:parse(Env),
                     lists:sort(emqx_rabbitmq_hook:hooked_events(Config))
             end,
    All = [client_connected, client_disconnected, message_publish],
    [?_assertEqual(All, Hooked([])),
     ?_assertEqual([message_publish], Hooked([{events, [message_publish]}])),
     ?_assertEqual(All, Hooked([{events, [message_publish]}, {presence, true}])),
     ?_assertEqual([client_connected, client_disconnected], Hooked([{events, []}, {presence, true}])),
     ?_assertEqual(All, Hooked([{events, [client_connected, message_publish]}, {presence, true}]))].

%% The hook API follows the major version of the emqx application: 5 and later register through
%% emqx_hooks:add/3, 4 through emqx:hook/2; no emqx application, no hooks.
broker_follows_the_emqx_major_version_test() ->
    Broker = fun(Vsn) ->
                     ok = application:load({application, emqx, [{vsn, Vsn}, {modules, []}, {registered, []},
                                                                {applications, [kernel, stdlib]}]}),
                     try emqx_rabbitmq_hook:broker() after application:unload(emqx) end
             end,
    ?assertEqual(none, emqx_rabbitmq_hook:broker()),
    ?assertEqual([emqx4, emqx4, emqx5, emqx5, emqx5],
                 [Broker(V) || V <- ["4.3.22", "4.4.19", "5.0.0", "5.8.6", "6.0.1"]]).

topics_outside_the_filters_are_not_sent(Ctx0) ->
    Ctx = start(Ctx0, [{publish_topics, ["sensors/+/temp", <<"alarms/#">>]}]),
    Topics = [<<"sensors/1/temp">>, <<"sensors/1/hum">>, <<"alarms">>, <<"alarms/fire/2">>,
              <<"other">>, <<"sensors/1/temp/x">>],
    [{ok, _} = emqx_rabbitmq_hook:on_message_publish(message(emqx4, <<"c">>, <<"u">>, T, <<"p">>), [])
     || T <- Topics],
    Got = receive_json(Ctx, 10),
    ?assertEqual([<<"sensors/1/temp">>, <<"alarms">>, <<"alarms/fire/2">>],
                 [maps:get(<<"topic">>, J) || #{json := J} <- Got]).

sys_topics_are_skipped_unless_a_filter_names_them(Ctx0) ->
    Sys = message(emqx4, emqx_sys, undefined, <<"$SYS/brokers/emqx@127.0.0.1/clients/c/connected">>,
                  <<"{}">>, #{sys => true}),
    Ctx = start(Ctx0),
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(Sys, []),
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(message(emqx4, <<"c">>, <<"u">>, <<"normal">>, <<"p">>), []),
    [#{json := J}] = receive_json(Ctx, 2),
    ?assertEqual(<<"normal">>, maps:get(<<"topic">>, J)),
    erh_test_rabbit:stop_plugin(),
    start(Ctx0, [{publish_topics, ["$SYS/#"]}]),
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(Sys, []),
    [#{json := S}] = receive_json(Ctx, 1),
    ?assertMatch(#{<<"from_client_id">> := <<"emqx_sys">>, <<"from_username">> := null}, S).

routing_key_templates_fill_in_the_event(Ctx0 = #{rabbit := Rabbit, exchange := Ex}) ->
    Q2 = <<(maps:get(queue, Ctx0))/binary, ".alarms">>,
    Env = erh_test_rabbit:plugin_env(Rabbit, [{exchange, Ex}, {queues, [{Q2, ["msg.alarms.#"]}]},
                                              {routing_keys, #{message_publish => "msg.${topic}",
                                                               client_connected => <<"conn.${clientid}.${username}">>}}]),
    {ok, _} = erh_test_rabbit:start_plugin(Env),
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(message(emqx4, <<"c">>, <<"u">>, <<"alarms/fire/2">>, <<"p">>), []),
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(message(emqx4, <<"c">>, <<"u">>, <<"sensors/1">>, <<"p">>), []),
    wait_confirmed(),
    [#{routing_key := Key}] = erh_test_rabbit:fetch(Rabbit, Q2, 2),
    ?assertEqual(<<"msg.alarms.fire.2">>, Key),
    %% The second had no queue bound for its key: RabbitMQ returned it, and that is counted.
    ?assertMatch(#{returned := 1}, emqx_rabbitmq_hook:stats()).

each_clients_events_arrive_in_order_across_publishers(Ctx0) ->
    Ctx = start(Ctx0, [{publishers, 4}, {confirm_window, 64}]),
    Clients = [<<"client-", (integer_to_binary(I))/binary>> || I <- lists:seq(1, 40)],
    PerClient = 50,
    Self = self(),
    Pids = [spawn_link(fun() ->
                               [{ok, _} = emqx_rabbitmq_hook:on_message_publish(
                                            message(emqx4, C, <<"u">>, <<"seq/", C/binary>>, integer_to_binary(I)), [])
                                || I <- lists:seq(1, PerClient)],
                               Self ! {done, self()}
                       end) || C <- Clients],
    [receive {done, P} -> ok end || P <- Pids],
    Total = length(Clients) * PerClient,
    Got = receive_json(Ctx, Total),
    ?assertEqual(Total, length(Got)),
    ByClient = lists:foldl(fun(#{json := J}, Acc) ->
                                   maps:update_with(maps:get(<<"from_client_id">>, J),
                                                    fun(L) -> [maps:get(<<"payload">>, J) | L] end,
                                                    [maps:get(<<"payload">>, J)], Acc)
                           end, #{}, Got),
    Expected = [integer_to_binary(I) || I <- lists:seq(1, PerClient)],
    [?assertEqual({C, Expected}, {C, lists:reverse(maps:get(C, ByClient))}) || C <- Clients],
    ?assertEqual(4, length(maps:get(connections, emqx_rabbitmq_hook:stats()))).

unexpected_shapes_are_counted_as_malformed(Ctx0) ->
    start(Ctx0),
    ?assertEqual({ok, not_a_message}, emqx_rabbitmq_hook:on_message_publish(not_a_message, [])),
    ?assertEqual({ok, {message, 1}}, emqx_rabbitmq_hook:on_message_publish({message, 1}, [])),
    ?assertEqual(ok, emqx_rabbitmq_hook:on_client_connected(#{}, #{}, [])),
    ?assertEqual(ok, emqx_rabbitmq_hook:on_client_connected(not_a_map, #{}, [])),
    ?assertEqual(ok, emqx_rabbitmq_hook:on_client_disconnected(#{clientid => 42}, normal, #{}, [])),
    ?assertMatch(#{malformed := 5, received := 0}, emqx_rabbitmq_hook:stats()).

hooks_return_at_once_while_rabbitmq_is_unreachable(#{rabbit := Rabbit}) ->
    Closed = erh_test_rabbit:free_port(),
    Env = erh_test_rabbit:plugin_env(Rabbit, [{servers, ["127.0.0.1:" ++ integer_to_list(Closed)]},
                                              {reconnect_min_ms, 50}, {reconnect_max_ms, 200}]),
    {ok, _} = erh_test_rabbit:start_plugin(Env),
    Msg = message(emqx4, <<"c">>, <<"u">>, <<"t">>, binary:copy(<<"x">>, 200)),
    {Micros, _} = timer:tc(fun() -> [emqx_rabbitmq_hook:on_message_publish(Msg, []) || _ <- lists:seq(1, 10000)] end),
    %% Loose bound for a shared machine: 10,000 calls well under a second means no call waited.
    ?assert(Micros < 1000000),
    ?assertMatch(#{queued := 10000, confirmed := 0, dropped := 0, connections := [#{state := connecting}]},
                 emqx_rabbitmq_hook:stats()),
    %% With RabbitMQ away, the publisher moves what waits in memory to the disk spool.
    ?assert(erh_test_rabbit:wait_for(fun() ->
                                             #{spool_events := Spooled, queue_depth := Depth} = emqx_rabbitmq_hook:stats(),
                                             Spooled =:= 10000 andalso Depth =:= 0
                                     end, 10000, 20)),
    ?assert(erh_test_rabbit:wait_for(fun() -> maps:get(connect_failures, emqx_rabbitmq_hook:stats()) >= 2 end,
                                     5000, 20)).

stats_report_every_counter(Ctx0) ->
    start(Ctx0),
    Stats = emqx_rabbitmq_hook:stats(),
    [?assert(is_integer(maps:get(K, Stats))) || K <- [received, filtered, malformed, queued, published, confirmed,
                                                      nacked, returned, reconnects, queue_depth, dropped]].

invalid_config_refuses_to_start_naming_the_key(#{rabbit := Rabbit}) ->
    Bad = [{servers, ["localhost:99999"]}, {exchange_type, headers}, {events, [client_connected, nope]},
           {publish_topics, ["a/#/b"]}, {payload_encoding, hex}, {queues, [{"", ["#"]}]},
           {confirm_window, 0}, {routing_keys, #{message_publish => "${nope}"}}],
    [begin
         Env = erh_test_rabbit:plugin_env(Rabbit, [{Key, Value}]),
         ?assertMatch({{error, {emqx_rabbitmq_hook, {{Key, _}, _}}}, Key}, {erh_test_rabbit:start_plugin(Env), Key}),
         ?assertEqual(undefined, emqx_rabbitmq_hook_server:handle())
     end || {Key, Value} <- Bad],
    %% The NIF checks the map it is given too, whatever the Erlang side let through.
    {ok, Good} = emqx_rabbitmq_hook_config:parse([]),
    ?assertEqual({error, {confirm_window, badarg}}, emqx_rabbitmq_hook_nif:start(Good#{confirm_window => -1})),
    ?assertEqual({error, {servers, badarg}}, emqx_rabbitmq_hook_nif:start(maps:remove(servers, Good))).

%% The event queues and the unroutable queue alike; each argument can be left out, to match a queue
%% declared without it.
classic_queues_are_lazy_and_of_version_2_unless_told_otherwise(Ctx0 = #{rabbit := Rabbit, queue := Q}) ->
    Unroutable = <<Q/binary, ".unroutable">>,
    Ctx = start(Ctx0, [{unroutable_queue, Unroutable}]),
    one_event_through(Ctx),
    Lazy2 = #{<<"x-queue-mode">> => <<"lazy">>, <<"x-queue-version">> => 2},
    ?assertEqual(Lazy2, erh_test_rabbit:queue_arguments(Rabbit, Q)),
    ?assertEqual(Lazy2, erh_test_rabbit:queue_arguments(Rabbit, Unroutable)),
    erh_test_rabbit:stop_plugin(),
    Cases = [{[{queue_mode, default}, {queue_version, 0}], #{}},
             {[{queue_mode, default}], #{<<"x-queue-version">> => 2}},
             {[{queue_version, 1}], #{<<"x-queue-mode">> => <<"lazy">>, <<"x-queue-version">> => 1}}],
    [begin
         Other = <<Q/binary, ".", (integer_to_binary(I))/binary>>,
         Ctx1 = start(Ctx0#{queue := Other}, [{unroutable_queue, ""} | Overrides]),
         one_event_through(Ctx1),
         ?assertEqual({Overrides, Expected}, {Overrides, erh_test_rabbit:queue_arguments(Rabbit, Other)}),
         erh_test_rabbit:stop_plugin()
     end || {I, {Overrides, Expected}} <- lists:zip(lists:seq(1, length(Cases)), Cases)].

%% x-queue-mode and x-queue-version are for classic queues: a quorum queue refuses them.
quorum_queues_get_only_their_type(Ctx0 = #{rabbit := Rabbit, queue := Q}) ->
    Ctx = start(Ctx0, [{queue_type, quorum}, {unroutable_queue, ""}]),
    one_event_through(Ctx),
    ?assertEqual(#{<<"x-queue-type">> => <<"quorum">>}, erh_test_rabbit:queue_arguments(Rabbit, Q)).

%% amq.topic exists already, durable: declared again as it is, it changes nothing and takes events.
rabbitmqs_own_amq_topic_exchange_takes_the_events(Ctx0) ->
    Ctx = start(Ctx0#{exchange := <<"amq.topic">>}),
    one_event_through(Ctx),
    assert_empty(Ctx),
    ?assertMatch(#{returned := 0, connect_failures := 0}, emqx_rabbitmq_hook:stats()).

messages_survive_a_rabbitmq_restart(Ctx0 = #{rabbit := Rabbit}) ->
    Ctx = start(Ctx0),
    N = 500,
    [{ok, _} = emqx_rabbitmq_hook:on_message_publish(
                 message(emqx4, <<"d">>, <<"u">>, <<"t">>, integer_to_binary(I)), []) || I <- lists:seq(1, N)],
    wait_confirmed(),
    erh_test_rabbit:stop_plugin(),
    ok = erh_test_rabbit:restart(Rabbit),
    Got = erh_test_rabbit:fetch_json(Rabbit, maps:get(queue, Ctx), N),
    ?assertEqual([integer_to_binary(I) || I <- lists:seq(1, N)], [maps:get(<<"payload">>, J) || #{json := J} <- Got]).
