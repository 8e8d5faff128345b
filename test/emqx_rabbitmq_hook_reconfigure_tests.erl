%% Configuration changes on a running plugin, against a real RabbitMQ and a real Redis: the new
%% configuration continues the same boot (clients stay online in the registry, message ids go on
%% counting), one that cannot start leaves the plugin running as it was, hook calls made during the
%% switch are counted, and a stop and start still begins a new boot.
-module(emqx_rabbitmq_hook_reconfigure_tests).

-include_lib("eunit/include/eunit.hrl").

-import(erh_test_redis, [settle/0]).

-define(APP, emqx_rabbitmq_hook).
-define(NODE, <<"emqx-r@10.0.0.3">>).

reconfigure_test_() ->
    erh_test_fixture:each(fun() -> #{rabbit => erh_test_rabbit:start(), redis => erh_test_redis:start()} end,
                          fun(#{rabbit := Rabbit, redis := Redis}) ->
                                  erh_test_rabbit:stop(Rabbit),
                                  erh_test_redis:stop(Redis)
                          end,
                          120, tests(), fun run/2).

tests() ->
    [fun a_config_change_keeps_connected_clients_online_under_the_same_boot/1,
     fun message_ids_go_on_counting_across_a_config_change_and_start_anew_after_a_restart/1,
     fun a_config_change_that_cannot_start_leaves_the_plugin_running_as_it_was/1,
     fun hook_calls_during_a_switch_are_counted_and_logged_once/1,
     fun a_switch_that_keeps_the_spool_drains_only_a_moment/1,
     fun a_switch_to_other_publishers_and_another_spool_dir_takes_the_spooled_events_along/1,
     fun hook_calls_while_the_server_restarts_are_counted/1,
     fun a_stopped_instance_is_continued_once_and_only_under_the_same_node/1].

run(Test, Resources = #{rabbit := Rabbit}) ->
    Unique = integer_to_binary(erlang:unique_integer([positive])),
    Spool = filename:join([maps:get(dir, Rabbit), "spool", "reconf-" ++ binary_to_list(Unique)]),
    Ctx = Resources#{exchange => <<"rc.ex.", Unique/binary>>, queue => <<"rc.q.", Unique/binary>>,
                     prefix => <<"rc", Unique/binary, ":">>, spool => Spool},
    try Test(Ctx)
    after erh_test_rabbit:stop_plugin()
    end.

%% An env with presence on, every event sent to RabbitMQ, and Overrides on top.
env(#{rabbit := Rabbit, redis := Redis, exchange := Ex, queue := Q, prefix := Prefix, spool := Spool},
    Overrides) ->
    erh_test_rabbit:plugin_env(Rabbit, [{exchange, Ex}, {queues, [{Q, ["#"]}]}, {spool_dir, Spool},
                                        {node, ?NODE}, {presence, true},
                                        {redis_server, erh_test_redis:server(Redis)},
                                        {redis_key_prefix, Prefix} | Overrides]).

start(Ctx, Overrides) ->
    {ok, _} = erh_test_rabbit:start_plugin(env(Ctx, Overrides)),
    ok.

stats() ->
    emqx_rabbitmq_hook:stats().

%%--------------------------------------------------------------------
%% Clients and messages
%%--------------------------------------------------------------------

connect(Channel, ClientId, At) ->
    erh_test_emqx:connect(Channel, ClientId, <<"u">>, At).

disconnect(Channel, ClientId, At, OffAt) ->
    erh_test_emqx:disconnect(Channel, ClientId, <<"u">>, At, OffAt).

id(I) -> <<"rc-", (integer_to_binary(I))/binary>>.

%% Clients 1..N connected, each from its own channel, at At.
connect_clients(N, At) ->
    Clients = [{I, erh_test_emqx:channel()} || I <- lists:seq(1, N)],
    [connect(Ch, id(I), At) || {I, Ch} <- Clients],
    Clients.

publish(Payload) ->
    publish(<<"dev-rc">>, Payload).

publish(ClientId, Payload) ->
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(
                {message, crypto:strong_rand_bytes(16), 1, ClientId, #{retain => false}, #{username => <<"u">>},
                 <<"rc/t">>, Payload, erlang:system_time(millisecond)}, []).

%% {Boot, Seq} of each of the next N messages of the queue, from message_id = node-boot-seq.
boots_and_seqs(#{rabbit := Rabbit, queue := Q}, N) ->
    Messages = erh_test_rabbit:fetch(Rabbit, Q, N),
    ?assertEqual(N, length(Messages)),
    [begin
         [NodeAndBoot, Seq] = string:split(Id, "-", trailing),
         [Node, Boot] = string:split(NodeAndBoot, "-", trailing),
         ?assertEqual(?NODE, Node),
         {Boot, binary_to_integer(Seq)}
     end || #{props := #{message_id := Id}} <- Messages].

%%--------------------------------------------------------------------
%% The registry
%%--------------------------------------------------------------------

q(#{redis := Redis}, Command) ->
    erh_test_redis:q(Redis, Command).

key(#{prefix := Prefix}, Name) ->
    <<Prefix/binary, Name/binary>>.

node_boot(Ctx) ->
    q(Ctx, ["GET", key(Ctx, <<"node:", ?NODE/binary>>)]).

online_count(Ctx) ->
    q(Ctx, ["SCARD", key(Ctx, <<"online">>)]).

online(ClientId) ->
    maps:get(online, emqx_rabbitmq_hook:presence(ClientId)).

%%--------------------------------------------------------------------
%% Tests
%%--------------------------------------------------------------------

a_config_change_keeps_connected_clients_online_under_the_same_boot(Ctx) ->
    %% A short liveness TTL: a tick every third of a second, each of which would sweep a dead boot.
    start(Ctx, [{presence_node_ttl_ms, 1000}]),
    T = erlang:system_time(millisecond),
    Clients = connect_clients(50, T),
    settle(),
    Boot = node_boot(Ctx),
    ?assertEqual(50, online_count(Ctx)),
    {Old, _} = emqx_rabbitmq_hook_server:handle(),
    ?assertEqual(ok, emqx_rabbitmq_hook_app:reconfigure(env(Ctx, [{presence_node_ttl_ms, 1000}, {publishers, 2}]))),
    ?assertNotMatch({Old, _}, emqx_rabbitmq_hook_server:handle()),
    ?assertEqual(2, length(maps:get(connections, stats()))),
    ?assertEqual({ok, 2}, application:get_env(?APP, publishers)),
    %% Several ticks of the new instance later: the same boot holds the liveness key, nothing was
    %% swept, nothing needed writing again, and the new instance knows the 50 connections.
    timer:sleep(1500),
    settle(),
    ?assertEqual(Boot, node_boot(Ctx)),
    ?assertEqual(50, online_count(Ctx)),
    [?assert(online(id(I))) || {I, _} <- Clients],
    ?assertMatch(#{presence_swept := 0, presence_resyncs := 0, presence_connections := 50}, stats()),
    %% Disconnects of connections made before the change still apply, and new connects too.
    [disconnect(Ch, id(I), T, T + 1) || {I, Ch} <- Clients, I rem 2 =:= 0],
    connect(erh_test_emqx:channel(), <<"rc-new">>, T + 2),
    settle(),
    [?assertEqual(I rem 2 =:= 1, online(id(I))) || {I, _} <- Clients],
    ?assert(online(<<"rc-new">>)),
    ?assertEqual(26, online_count(Ctx)),
    ?assertMatch(#{presence_connections := 26, presence_ignored := 0, presence_errors := 0}, stats()).

message_ids_go_on_counting_across_a_config_change_and_start_anew_after_a_restart(Ctx) ->
    start(Ctx, [{presence, false}]),
    [publish(<<"before">>) || _ <- lists:seq(1, 3)],
    [{Boot, 1}, {Boot, 2}, {Boot, 3}] = boots_and_seqs(Ctx, 3),
    ok = emqx_rabbitmq_hook_app:reconfigure(env(Ctx, [{presence, false}, {publishers, 3}])),
    [publish(<<"after">>) || _ <- lists:seq(1, 3)],
    ?assertEqual([{Boot, 4}, {Boot, 5}, {Boot, 6}], lists:sort(boots_and_seqs(Ctx, 3))),
    ?assertMatch(#{seq := 6}, stats()),
    %% A stop and start is a new boot: a new boot id, seq from 1.
    ok = erh_test_rabbit:stop_plugin(),
    start(Ctx, [{presence, false}]),
    publish(<<"restarted">>),
    [{NewBoot, 1}] = boots_and_seqs(Ctx, 1),
    ?assertNotEqual(Boot, NewBoot).

a_config_change_that_cannot_start_leaves_the_plugin_running_as_it_was(Ctx = #{rabbit := Rabbit, redis := Redis}) ->
    %% Connects and disconnects go to the registry only: the queue holds the messages.
    start(Ctx, [{events, [message_publish]}]),
    Env = lists:sort(application:get_all_env(?APP)),
    T = erlang:system_time(millisecond),
    Clients = connect_clients(20, T),
    publish(<<"before">>),
    settle(),
    [{Boot, 1}] = boots_and_seqs(Ctx, 1),
    %% The spool folder would be below a regular file: checked only as text before the start.
    NotAFolder = filename:join(maps:get(dir, Rabbit), "not-a-folder"),
    ok = file:write_file(NotAFolder, <<>>),
    Port = integer_to_binary(erh_test_rabbit:port(Rabbit)),
    Changed = #{<<"servers">> => [<<"127.0.0.1:", Port/binary>>], <<"exchange">> => maps:get(exchange, Ctx),
                <<"queues">> => [#{<<"name">> => <<"rc.other">>, <<"bindings">> => [<<"#">>]}],
                <<"node">> => ?NODE, <<"publishers">> => 2,
                <<"spool">> => #{<<"dir">> => iolist_to_binary(filename:join(NotAFolder, "spool"))},
                <<"presence">> => #{<<"enable">> => true},
                <<"redis">> => #{<<"server">> => list_to_binary(erh_test_redis:server(Redis)),
                                 <<"key_prefix">> => maps:get(prefix, Ctx)}},
    {error, Message} = emqx_rabbitmq_hook_app:on_config_changed(#{}, Changed),
    ?assert(is_binary(Message)),
    ?assertMatch(<<"invalid value for spool.dir: ", _/binary>>, Message),
    ?assertMatch({_, _}, binary:match(Message, <<"not-a-folder">>)),
    %% The previous configuration runs, with its env, under the same boot.
    ?assertEqual(Env, lists:sort(application:get_all_env(?APP))),
    ?assertMatch(#{running := true, connections := [_]}, stats()),
    publish(<<"after">>),
    ?assertEqual([{Boot, 2}], boots_and_seqs(Ctx, 1)),
    timer:sleep(500),
    settle(),
    ?assertEqual(Boot, node_boot(Ctx)),
    [?assert(online(id(I))) || {I, _} <- Clients],
    ?assertMatch(#{presence_connections := 20, presence_swept := 0}, stats()),
    %% A good change applies after a failed one.
    ?assertEqual(ok, emqx_rabbitmq_hook_app:on_config_changed(
                       #{}, Changed#{<<"spool">> => #{<<"dir">> => list_to_binary(maps:get(spool, Ctx))}})),
    ?assertMatch(#{running := true, connections := [_, _]}, stats()),
    ?assertEqual(Boot, node_boot(Ctx)).

hook_calls_during_a_switch_are_counted_and_logged_once(Ctx) ->
    %% RabbitMQ out of reach: the drain takes all of drain_timeout, while a channel publishes on.
    Closed = ["127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port())],
    Overrides = [{presence, false}, {servers, Closed}, {drain_timeout_ms, 500}],
    start(Ctx, Overrides),
    {Old, _} = emqx_rabbitmq_hook_server:handle(),
    {Produced, Lines} =
        erh_test_logs:capture(fun() ->
                          Producer = erh_test_emqx:producer(fun(N) -> publish(integer_to_binary(N)) end),
                          timer:sleep(100),
                          ok = emqx_rabbitmq_hook_app:reconfigure(env(Ctx, [{publishers, 2} | Overrides])),
                          timer:sleep(100),
                          erh_test_emqx:stop_producer(Producer)
                  end),
    #{received := OldReceived, queued := OldQueued, dropped := 0} = emqx_rabbitmq_hook_nif:stats(Old),
    #{received := NewReceived, queued := NewQueued, not_running := NotRunning} = stats(),
    ?assertEqual(Produced, OldReceived + NewReceived),
    ?assertEqual(NewReceived, NewQueued),
    ?assertEqual(OldReceived - OldQueued, NotRunning),
    ?assert(NotRunning > 0),
    ?assertEqual(1, length([L || L <- Lines, binary:match(L, <<"event not accepted (not_running)">>) =/= nomatch])).

%% A change that keeps the spool (folder and publishers) does not wait drain_timeout for a RabbitMQ
%% out of reach: what is unconfirmed goes to the spool, and the new instance holds it to send first.
a_switch_that_keeps_the_spool_drains_only_a_moment(Ctx) ->
    Closed = ["127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port())],
    Overrides = [{presence, false}, {servers, Closed}, {drain_timeout_ms, 5000}],
    start(Ctx, Overrides),
    {Old, _} = emqx_rabbitmq_hook_server:handle(),
    [publish(integer_to_binary(N)) || N <- lists:seq(1, 100)],
    {Micros, ok} = timer:tc(fun() ->
                                    emqx_rabbitmq_hook_app:reconfigure(env(Ctx, [{confirm_window, 64} | Overrides]))
                            end),
    ?assert(Micros < 2000000),
    ?assertMatch(#{queued := 100, undelivered := 100, dropped := 0}, emqx_rabbitmq_hook_nif:stats(Old)),
    %% The new publishers open the spool on their own threads.
    ?assert(erh_test_rabbit:wait_for(fun() -> maps:get(spool_events, stats()) =:= 100 end, 5000, 20)),
    ?assertMatch(#{running := true}, stats()).

%% Other publishers and another spool folder: the drain is as short, as the new instance moves what
%% the old one spooled into its own folders (each client's events to its new publisher, in order)
%% and sends it once RabbitMQ is there.
a_switch_to_other_publishers_and_another_spool_dir_takes_the_spooled_events_along(
  Ctx = #{rabbit := Rabbit, queue := Q, spool := Spool}) ->
    Closed = ["127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port())],
    start(Ctx, [{presence, false}, {servers, Closed}, {publishers, 3}, {drain_timeout_ms, 5000}]),
    Clients = [<<"sw-", (integer_to_binary(I))/binary>> || I <- lists:seq(1, 8)],
    [publish(C, integer_to_binary(N)) || N <- lists:seq(1, 25), C <- Clients],
    Moved = Spool ++ "-moved",
    {Micros, ok} = timer:tc(fun() ->
                                    emqx_rabbitmq_hook_app:reconfigure(
                                      env(Ctx, [{presence, false}, {publishers, 2}, {spool_dir, Moved}]))
                            end),
    ?assert(Micros < 2000000),
    ?assertEqual([], filelib:wildcard(Spool ++ "/*/*.seg")),
    %% Sent from the spool, and confirmed once the spool holds none.
    ?assert(erh_test_rabbit:wait_for(fun() -> maps:with([replayed, spool_events], stats()) =:=
                                                  #{replayed => 200, spool_events => 0} end, 30000, 50)),
    Messages = erh_test_rabbit:fetch_json(Rabbit, Q, 200),
    ByClient = lists:foldr(fun(#{json := #{<<"from_client_id">> := C, <<"payload">> := P}}, Acc) ->
                                   maps:update_with(C, fun(L) -> [P | L] end, [P], Acc)
                           end, #{}, Messages),
    ?assertEqual(maps:from_list([{C, [integer_to_binary(N) || N <- lists:seq(1, 25)]} || C <- Clients]), ByClient),
    ?assertEqual(0, erh_test_rabbit:queue_length(Rabbit, Q)).

hook_calls_while_the_server_restarts_are_counted(Ctx) ->
    start(Ctx, [{presence, false}]),
    %% The supervisor held back: the server is gone until it resumes.
    ok = sys:suspend(emqx_rabbitmq_hook_sup),
    try
        Server = monitor(process, emqx_rabbitmq_hook_server),
        ok = sys:terminate(emqx_rabbitmq_hook_server, provoked),   % replies before it terminates
        receive {'DOWN', Server, process, _, provoked} -> ok end,
        ?assertEqual(undefined, emqx_rabbitmq_hook_server:handle()),
        [publish(<<"lost">>) || _ <- lists:seq(1, 5)]
    after
        sys:resume(emqx_rabbitmq_hook_sup)
    end,
    ?assert(erh_test_rabbit:wait_for(fun() -> emqx_rabbitmq_hook_server:handle() =/= undefined end, 10000, 10)),
    ?assertMatch(#{running := true, not_running := 5}, stats()),
    %% Counted since the plugin started: a stop forgets them.
    ok = erh_test_rabbit:stop_plugin(),
    start(Ctx, [{presence, false}]),
    ?assertMatch(#{not_running := 0}, stats()).

%% The NIF's rules, on instances of its own (no spool, so two may run at once).
a_stopped_instance_is_continued_once_and_only_under_the_same_node(Ctx) ->
    Closed = ["127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port())],
    {ok, Config} = emqx_rabbitmq_hook_config:parse(env(Ctx, [{presence, false}, {servers, Closed},
                                                             {spool_max_bytes, 0}])),
    Nif = emqx_rabbitmq_hook_nif,
    {ok, A} = Nif:start(Config),
    [ok = Nif:submit(A, message(I)) || I <- lists:seq(1, 3)],
    ?assertError(badarg, Nif:start(Config, A)),               % still running
    ok = Nif:stop(A, 0),
    {ok, B} = Nif:start(Config, A),
    ?assertMatch(#{seq := 3}, Nif:stats(B)),
    ok = Nif:submit(B, message(4)),
    ?assertMatch(#{seq := 4}, Nif:stats(B)),
    {ok, C} = Nif:start(Config, A),                           % A's boot goes on in B only
    ?assertMatch(#{seq := 0}, Nif:stats(C)),
    ok = Nif:stop(B, 0),
    {ok, D} = Nif:start(Config#{node => <<"emqx-other@10.0.0.4">>}, B),   % another node: a new boot
    ?assertMatch(#{seq := 0}, Nif:stats(D)),
    {ok, E} = Nif:start(Config, B),                           % D took nothing from B
    ?assertMatch(#{seq := 4}, Nif:stats(E)),
    ok = Nif:stop(E, 0),
    {ok, F} = Nif:start(Config#{presence => true}, E),        % presence comes on: a new boot
    ?assertMatch(#{seq := 0}, Nif:stats(F)),
    [ok = Nif:stop(H, 0) || H <- [C, D, F]].

message(I) ->
    {publish, crypto:strong_rand_bytes(16), <<"dev-rc">>, undefined, <<"rc/t">>, integer_to_binary(I), 1, false,
     erlang:system_time(millisecond)}.
