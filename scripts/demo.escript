#!/usr/bin/env escript
%% -*- erlang -*-
%% make run: a local RabbitMQ, the plugin in this node, 200 devices connecting, publishing and
%% disconnecting through the very hook callbacks EMQX calls; then the queue is read back and checked.
-mode(compile).

-define(DEVICES, 200).
-define(MESSAGES_PER_DEVICE, 25).
-define(QUEUE, <<"iothub.events">>).

main(_) ->
    Root = filename:dirname(filename:dirname(filename:absname(escript:script_name()))),
    [code:add_patha(Dir) || Dir <- filelib:wildcard(filename:join(Root, "_build/test/lib/*/{ebin,test}"))],
    io:format("starting a local RabbitMQ...~n"),
    Rabbit = erh_test_rabbit:start(),
    try run(Rabbit)
    after erh_test_rabbit:stop(Rabbit)
    end.

run(Rabbit) ->
    Env = erh_test_rabbit:plugin_env(Rabbit, [{queues, [{?QUEUE, ["#"]}]}, {publishers, 2}]),
    {ok, _} = erh_test_rabbit:start_plugin(Env),
    io:format("plugin started, RabbitMQ on 127.0.0.1:~b; ~b devices connect, publish ~b messages "
              "each and disconnect...~n", [erh_test_rabbit:port(Rabbit), ?DEVICES, ?MESSAGES_PER_DEVICE]),
    T0 = erlang:monotonic_time(millisecond),
    Self = self(),
    Pids = [spawn_link(fun() -> device(I), Self ! {done, self()} end) || I <- lists:seq(1, ?DEVICES)],
    [receive {done, P} -> ok end || P <- Pids],
    T1 = erlang:monotonic_time(millisecond),
    Stats = emqx_rabbitmq_hook:stats(),
    Expected = maps:get(queued, Stats),
    true = erh_test_rabbit:wait_for(fun() -> maps:get(confirmed, emqx_rabbitmq_hook:stats()) >= Expected end,
                                    60000, 10),
    T2 = erlang:monotonic_time(millisecond),
    Final = emqx_rabbitmq_hook:stats(),
    ok = erh_test_rabbit:stop_plugin(),
    Got = erh_test_rabbit:fetch_json(Rabbit, ?QUEUE, Expected + 1),
    report(Final, Got, Expected, T1 - T0, T2 - T0).

%% One device, in its own process as an EMQX channel would be.
device(I) ->
    ClientId = iolist_to_binary(io_lib:format("device-~4..0b", [I])),
    Username = case I rem 10 of 0 -> undefined; _ -> <<"fleet-a">> end,
    ConnectedAt = erlang:system_time(millisecond),
    ClientInfo = #{clientid => ClientId, username => Username, peerhost => {10, 1, I div 250, I rem 250},
                   sockport => 1883, protocol => mqtt, zone => external, mountpoint => undefined,
                   is_superuser => false},
    ConnInfo = #{clientid => ClientId, username => Username, peername => {{10, 1, I div 250, I rem 250}, 40000 + I},
                 sockname => {{10, 0, 0, 1}, 1883}, proto_name => <<"MQTT">>, proto_ver => 4 + I rem 2,
                 keepalive => 60, clean_start => true, expiry_interval => 0, connected_at => ConnectedAt},
    ok = emqx_rabbitmq_hook:on_client_connected(ClientInfo, ConnInfo, []),
    [publish(ClientId, Username, N) || N <- lists:seq(1, ?MESSAGES_PER_DEVICE)],
    ok = emqx_rabbitmq_hook:on_client_disconnected(
           ClientInfo, normal, ConnInfo#{disconnected_at => erlang:system_time(millisecond)}, []).

publish(ClientId, Username, N) ->
    Payload = case N rem 5 of
                  0 -> crypto:strong_rand_bytes(32); %% a binary frame: arrives base64
                  _ -> iolist_to_binary(io_lib:format("{\"n\":~b,\"temp\":~.1f}", [N, 20 + rand:uniform() * 5]))
              end,
    Message = {message, crypto:strong_rand_bytes(16), N rem 3, ClientId, #{retain => false},
               #{username => Username}, <<"devices/", ClientId/binary, "/telemetry">>, Payload,
               erlang:system_time(millisecond)},
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(Message, []).

report(Stats, Got, Expected, HookMs, ConfirmMs) ->
    Actions = lists:foldl(fun(#{json := #{<<"action">> := A}}, Acc) -> maps:update_with(A, fun(C) -> C + 1 end, 1, Acc) end,
                          #{}, Got),
    Ids = lists:usort([maps:get(message_id, P) || #{props := P} <- Got]),
    Base64 = length([x || #{json := #{<<"payload_encoding">> := <<"base64">>}} <- Got]),
    InOrder = in_order(Got),
    io:format("~n  hook calls        ~b in ~b ms~n", [maps:get(received, Stats), HookMs]),
    io:format("  confirmed           ~b by RabbitMQ after ~b ms (~b events/s end to end)~n",
              [maps:get(confirmed, Stats), ConfirmMs, maps:get(confirmed, Stats) * 1000 div max(1, ConfirmMs)]),
    [io:format("  ~-20s~b~n", [A, C]) || {A, C} <- lists:sort(maps:to_list(Actions))],
    io:format("  base64 payloads     ~b~n", [Base64]),
    io:format("  unique message ids ~b, each device's events in order: ~p~n", [length(Ids), InOrder]),
    io:format("  dropped ~b, returned ~b, nacked ~b, reconnects ~b~n",
              [maps:get(dropped, Stats), maps:get(returned, Stats), maps:get(nacked, Stats), maps:get(reconnects, Stats)]),
    io:format("delivered ~b of ~b events~n", [length(Got), Expected]),
    case length(Got) =:= Expected andalso length(Ids) =:= Expected andalso InOrder of
        true -> ok;
        false -> halt(1)
    end.

%% Within each device, seq must increase: connected first, then its messages, then disconnected.
in_order(Got) ->
    Seqs = lists:foldl(fun(#{json := J}, Acc) ->
                               Client = maps:get(<<"clientid">>, J, maps:get(<<"from_client_id">>, J, none)),
                               maps:update_with(Client, fun(L) -> [maps:get(<<"seq">>, J) | L] end,
                                                [maps:get(<<"seq">>, J)], Acc)
                       end, #{}, Got),
    lists:all(fun(L) -> lists:reverse(L) =:= lists:sort(L) end, maps:values(Seqs)).
