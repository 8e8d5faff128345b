%% The presence registry against a real Redis: the hook callbacks called as EMQX calls them, each
%% connection from its own channel process, and the registry read back through
%% emqx_rabbitmq_hook:presence/1 and with priv/presence_read.lua as any Redis client reads it.
-module(emqx_rabbitmq_hook_presence_tests).

-include_lib("eunit/include/eunit.hrl").

-import(erh_test_emqx, [channel/0, connect/4, disconnect/5]).
-import(erh_test_redis, [settle/0]).

-define(NODE, <<"emqx-a@10.0.0.1">>).

presence_test_() ->
    erh_test_fixture:each(fun erh_test_redis:start/0, fun erh_test_redis:stop/1, 120, tests(), fun run/2).

tests() ->
    [fun online_then_offline_with_every_field/1,
     fun registry_keys_follow_the_documented_layout/1,
     fun newest_connect_wins_and_late_events_change_nothing/1,
     fun any_client_id_and_a_missing_username/1,
     fun read_script_says_offline_once_the_nodes_liveness_expired/1,
     fun a_restarted_node_clears_its_old_connections/1,
     fun registry_converges_after_redis_was_down_and_counts_the_retries/1,
     fun updates_in_flight_when_redis_stops_answering_are_sent_again/1,
     fun queue_overflow_while_redis_is_down_is_repaired_from_memory/1,
     fun redis_restarted_empty_gets_this_nodes_connections_back/1,
     fun redis_that_lost_acknowledged_writes_is_repaired_from_memory/1,
     fun scripts_flushed_from_redis_are_loaded_again/1,
     fun acl_user_and_password_and_a_refused_login/1,
     fun redis_db_and_key_prefix_place_the_keys/1,
     fun hooks_return_at_once_while_redis_is_unreachable/1,
     fun lookups_fail_fast_while_redis_hangs/1,
     fun presence_off_needs_no_redis/1,
     fun delivery_threads_wait_for_the_schedulers_when_they_wake/1].

run(Test, Redis) ->
    Prefix = <<"t", (integer_to_binary(erlang:unique_integer([positive])))/binary, ":">>,
    try Test(#{redis => Redis, prefix => Prefix})
    after
        erh_test_rabbit:stop_plugin(),
        erh_test_redis:up_if_down(Redis)
    end.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

start(#{redis := Redis, prefix := Prefix}, Overrides) ->
    %% RabbitMQ is not needed here: the publishers point at a closed port and keep retrying, with
    %% no spool to write.
    Env = maps:to_list(maps:merge(
                         #{presence => true, redis_server => erh_test_redis:server(Redis),
                           redis_key_prefix => Prefix, node => ?NODE, events => [message_publish],
                           servers => ["127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port())],
                           reconnect_min_ms => 50, reconnect_max_ms => 300, spool_max_bytes => 0},
                         maps:from_list(Overrides))),
    {ok, _} = erh_test_rabbit:start_plugin(Env),
    ok.

conn_id(Channel, At) ->
    iolist_to_binary([?NODE, "/", pid_to_list(Channel), "/", integer_to_binary(At)]).

now_ms() ->
    erlang:system_time(millisecond).

stats() ->
    emqx_rabbitmq_hook:stats().

%% Wait until Check(stats()) holds.
wait_stats(Check) ->
    ?assert(erh_test_rabbit:wait_for(fun() -> Check(stats()) end, 20000, 20)).

%% Stop Redis (it keeps its data for the next start) and wait until the plugin has noticed.
redis_away(Redis) ->
    erh_test_redis:down(Redis),
    wait_stats(fun(#{redis_state := State}) -> State =:= connecting end).

online(ClientId) ->
    maps:get(online, emqx_rabbitmq_hook:presence(ClientId)).

key(#{prefix := Prefix}, Name) ->
    <<Prefix/binary, Name/binary>>.

q(#{redis := Redis}, Command) ->
    erh_test_redis:q(Redis, Command).

read(#{redis := Redis, prefix := Prefix}, ClientId) ->
    erh_test_redis:read(Redis, Prefix, ClientId).

%%--------------------------------------------------------------------
%% Tests
%%--------------------------------------------------------------------

online_then_offline_with_every_field(Ctx) ->
    start(Ctx, []),
    Ch = channel(),
    At = now_ms(),
    connect(Ch, <<"dev-1">>, <<"alice">>, At),
    settle(),
    Conn = #{node => ?NODE, conn_id => conn_id(Ch, At), connected_at => At, ipaddress => <<"192.168.7.21">>,
             username => <<"alice">>},
    ?assertEqual(Conn#{online => true}, emqx_rabbitmq_hook:presence(<<"dev-1">>)),
    disconnect(Ch, <<"dev-1">>, <<"alice">>, At, At + 5000),
    settle(),
    ?assertEqual(Conn#{online => false, last_disconnected_at => At + 5000},
                 emqx_rabbitmq_hook:presence(<<"dev-1">>)),
    ?assertEqual(#{online => false}, emqx_rabbitmq_hook:presence(<<"never-seen">>)),
    %% events = [message_publish]: RabbitMQ gets neither event, presence gets both.
    ?assertMatch(#{received := 2, filtered := 2, presence_queued := 2, presence_applied := 2,
                   presence_dropped := 0, presence_errors := 0, presence_connections := 0}, stats()).

registry_keys_follow_the_documented_layout(Ctx) ->
    start(Ctx, [{presence_node_ttl_ms, 30000}, {presence_tombstone_ttl_ms, 60000}]),
    Ch = channel(),
    At = now_ms(),
    connect(Ch, <<"dev-2">>, <<"bob">>, At),
    settle(),
    Client = maps:from_list(pairs(q(Ctx, ["HGETALL", key(Ctx, <<"client:dev-2">>)]))),
    Boot = maps:get(<<"boot">>, Client),
    ?assertMatch(#{<<"conn_id">> := _, <<"node">> := ?NODE, <<"connected_at">> := _, <<"seq">> := <<"1">>,
                   <<"ipaddress">> := <<"192.168.7.21">>, <<"username">> := <<"bob">>, <<"live">> := <<"1">>},
                 Client),
    ?assertEqual(16, byte_size(Boot)),
    ?assertEqual([<<"dev-2">>], q(Ctx, ["SMEMBERS", key(Ctx, <<"online">>)])),
    ?assertEqual(Boot, q(Ctx, ["GET", key(Ctx, <<"node:", ?NODE/binary>>)])),
    NodeTtl = q(Ctx, ["PTTL", key(Ctx, <<"node:", ?NODE/binary>>)]),
    ?assert(NodeTtl > 0 andalso NodeTtl =< 30000),
    ?assertEqual(?NODE, q(Ctx, ["HGET", key(Ctx, <<"boots">>), Boot])),
    ?assertEqual([<<"dev-2">>], q(Ctx, ["SMEMBERS", key(Ctx, <<"boot:", Boot/binary>>)])),
    ?assertEqual(-1, q(Ctx, ["TTL", key(Ctx, <<"client:dev-2">>)])),
    Mark = binary_to_integer(q(Ctx, ["HGET", key(Ctx, <<"marks">>), Boot])),
    ?assert(Mark > 0),
    disconnect(Ch, <<"dev-2">>, <<"bob">>, At, At + 1),
    settle(),
    ?assert(binary_to_integer(q(Ctx, ["HGET", key(Ctx, <<"marks">>), Boot])) > Mark),
    TombstoneTtl = q(Ctx, ["PTTL", key(Ctx, <<"tombstone:", (conn_id(Ch, At))/binary>>)]),
    ?assert(TombstoneTtl > 0 andalso TombstoneTtl =< 60000),
    ?assertEqual([], q(Ctx, ["SMEMBERS", key(Ctx, <<"online">>)])),
    ?assertEqual([], q(Ctx, ["SMEMBERS", key(Ctx, <<"boot:", Boot/binary>>)])),
    ?assertEqual(<<"0">>, q(Ctx, ["HGET", key(Ctx, <<"client:dev-2">>), "live"])).

pairs([K, V | Rest]) -> [{K, V} | pairs(Rest)];
pairs([]) -> [].

newest_connect_wins_and_late_events_change_nothing(Ctx) ->
    start(Ctx, []),
    [A, B, C, D] = [channel() || _ <- lists:seq(1, 4)],
    T = now_ms(),
    Id = <<"dev-3">>,
    connect(A, Id, <<"u">>, T),
    connect(B, Id, <<"u">>, T + 10),           % takeover: B is newer
    disconnect(A, Id, <<"u">>, T, T + 11),     % A's disconnect, after B's connect: B stays
    settle(),
    ?assertMatch(#{online := true, conn_id := _}, emqx_rabbitmq_hook:presence(Id)),
    ?assertEqual(conn_id(B, T + 10), maps:get(conn_id, emqx_rabbitmq_hook:presence(Id))),
    disconnect(B, Id, <<"u">>, T + 10, T + 20),
    settle(),
    ?assertNot(online(Id)),
    connect(A, Id, <<"u">>, T),                % a connect older than the newest: nothing
    connect(B, Id, <<"u">>, T + 10),           % a connect whose disconnect was seen: nothing
    settle(),
    ?assertNot(online(Id)),
    %% Two connections in the same millisecond on one node: the later connect (seq) wins, and the
    %% earlier one's disconnect does not remove it.
    connect(C, Id, <<"u">>, T + 30),
    connect(D, Id, <<"u">>, T + 30),
    disconnect(C, Id, <<"u">>, T + 30, T + 31),
    settle(),
    ?assertEqual(conn_id(D, T + 30), maps:get(conn_id, emqx_rabbitmq_hook:presence(Id))),
    ?assert(online(Id)),
    ?assertMatch(#{presence_ignored := 4, presence_connections := 1}, stats()).

any_client_id_and_a_missing_username(Ctx) ->
    start(Ctx, []),
    Ids = [<<"with space">>, <<"a:b:c">>, <<"{tag}x">>, <<"}{">>, <<255, 254, 0, 1>>, <<"line\nbreak">>,
           <<"é✓"/utf8>>, <<"*">>, <<"?">>, binary:copy(<<"L">>, 65535)],
    T = now_ms(),
    Channels = [{Id, channel()} || Id <- Ids],
    [connect(Ch, Id, undefined, T) || {Id, Ch} <- Channels],
    settle(),
    [begin
         P = emqx_rabbitmq_hook:presence(Id),
         ?assertMatch(#{online := true}, P),
         ?assertEqual(conn_id(Ch, T), maps:get(conn_id, P)),
         ?assertNot(maps:is_key(username, P)),
         ?assertMatch(#{<<"online">> := <<"1">>}, read(Ctx, Id))
     end || {Id, Ch} <- Channels],
    ?assertEqual(lists:sort(Ids), lists:sort(q(Ctx, ["SMEMBERS", key(Ctx, <<"online">>)]))),
    [disconnect(Ch, Id, undefined, T, T + 1) || {Id, Ch} <- Channels],
    settle(),
    [?assertEqual(#{online => false, node => ?NODE, conn_id => conn_id(Ch, T), connected_at => T,
                    ipaddress => <<"192.168.7.21">>, last_disconnected_at => T + 1},
                  emqx_rabbitmq_hook:presence(Id)) || {Id, Ch} <- Channels],
    ?assertMatch(#{presence_errors := 0, malformed := 0}, stats()).

read_script_says_offline_once_the_nodes_liveness_expired(Ctx = #{redis := Redis, prefix := Prefix}) ->
    start(Ctx, [{presence_node_ttl_ms, 1000}]),
    Ch = channel(),
    connect(Ch, <<"dev-4">>, <<"u">>, now_ms()),
    settle(),
    ?assertMatch(#{<<"online">> := <<"1">>}, read(Ctx, <<"dev-4">>)),
    %% The node stops (as if it crashed: nothing clears its connections) and its liveness expires.
    erh_test_rabbit:stop_plugin(),
    NodeKey = key(Ctx, <<"node:", ?NODE/binary>>),
    ?assert(erh_test_rabbit:wait_for(fun() -> q(Ctx, ["EXISTS", NodeKey]) =:= 0 end, 10000, 50)),
    ?assertEqual(<<"1">>, q(Ctx, ["HGET", key(Ctx, <<"client:dev-4">>), "live"])),
    ?assertMatch(#{<<"online">> := <<"0">>, <<"node">> := ?NODE}, read(Ctx, <<"dev-4">>)),
    %% The same from the command line, as README shows.
    Cli = os:cmd(lists:flatten(io_lib:format("redis-cli -p ~b --eval ~s ~sclient:dev-4 , ~s",
                                             [erh_test_redis:port(Redis),
                                              filename:join(code:priv_dir(emqx_rabbitmq_hook),
                                                            "presence_read.lua"),
                                              Prefix, Prefix]))),
    ?assertMatch(["online", "0", "node", _ | _], string:lexemes(Cli, "\n")).

a_restarted_node_clears_its_old_connections(Ctx) ->
    start(Ctx, []),
    T = now_ms(),
    [connect(channel(), <<"old-", (integer_to_binary(I))/binary>>, <<"u">>, T) || I <- lists:seq(1, 50)],
    settle(),
    ?assertEqual(50, length(q(Ctx, ["SMEMBERS", key(Ctx, <<"online">>)]))),
    erh_test_rabbit:stop_plugin(),
    start(Ctx, []),                            % the same node name, a new boot id
    wait_stats(fun(#{presence_swept := N}) -> N =:= 50 end),
    ?assertEqual([], q(Ctx, ["SMEMBERS", key(Ctx, <<"online">>)])),
    ?assertNot(online(<<"old-1">>)),
    ?assertEqual(1, q(Ctx, ["HLEN", key(Ctx, <<"boots">>)])).

registry_converges_after_redis_was_down_and_counts_the_retries(Ctx = #{redis := Redis}) ->
    start(Ctx, []),
    T = now_ms(),
    First = connect_clients(lists:seq(1, 100), T),
    settle(),
    redis_away(Redis),
    %% While Redis is away: half of the first clients leave, 100 others arrive.
    [disconnect(Ch, id(I), <<"u">>, T, T + 1) || {I, Ch} <- First, I rem 2 =:= 0],
    connect_clients(lists:seq(101, 200), T + 2),
    ?assertMatch(#{presence_queue_depth := 150}, stats()),
    wait_stats(fun(#{redis_connect_failures := N}) -> N >= 2 end),
    erh_test_redis:up(Redis),
    settle(),
    [?assertEqual(I rem 2 =:= 1 orelse I > 100, online(id(I))) || I <- lists:seq(1, 200)],
    ?assertEqual(150, length(q(Ctx, ["SMEMBERS", key(Ctx, <<"online">>)]))),
    ?assertMatch(#{presence_applied := 250, presence_dropped := 0, presence_errors := 0}, stats()),
    ?assert(maps:get(redis_reconnects, stats()) >= 1).

id(I) -> <<"client-", (integer_to_binary(I))/binary>>.

%% The clients numbered Is connect at At, each from its own channel: [{I, Channel}].
connect_clients(Is, At) ->
    Clients = [{I, channel()} || I <- Is],
    [connect(Ch, id(I), <<"u">>, At) || {I, Ch} <- Clients],
    Clients.

updates_in_flight_when_redis_stops_answering_are_sent_again(Ctx) ->
    start(Ctx, [{presence_timeout_ms, 200}]),
    T = now_ms(),
    [connect(channel(), id(I), <<"u">>, T) || I <- lists:seq(1, 50)],
    settle(),
    %% Redis holds every command for 1.5 s: the pipeline in flight times out, the connection is
    %% dropped, and what had no reply goes again once Redis answers.
    <<"OK">> = q(Ctx, ["CLIENT", "PAUSE", 1500, "ALL"]),
    Channels = connect_clients(lists:seq(51, 250), T),
    [disconnect(Ch, id(I), <<"u">>, T, T + 1) || {I, Ch} <- Channels, I rem 2 =:= 0],
    settle(),
    [?assertEqual(I =< 50 orelse I rem 2 =:= 1, online(id(I))) || I <- lists:seq(1, 250)],
    ?assertMatch(#{presence_applied := 350, presence_errors := 0}, stats()),
    #{presence_retried := Retried, redis_reconnects := Reconnects} = stats(),
    ?assert(Retried > 0),
    ?assert(Reconnects >= 1).

queue_overflow_while_redis_is_down_is_repaired_from_memory(Ctx = #{redis := Redis}) ->
    start(Ctx, [{presence_buffer_events, 20}]),
    T = now_ms(),
    First = connect_clients(lists:seq(1, 30), T),
    settle(),
    redis_away(Redis),
    [disconnect(Ch, id(I), <<"u">>, T, T + 1) || {I, Ch} <- First, I rem 3 =:= 0],
    [connect(channel(), id(I), <<"u">>, T + 2) || I <- lists:seq(31, 100)],
    #{presence_dropped := Dropped} = stats(),
    ?assert(Dropped > 0),
    erh_test_redis:up(Redis),
    settle(),
    wait_stats(fun(#{presence_resyncs := N}) -> N >= 1 end),
    settle(),
    Online = [I || I <- lists:seq(1, 100), I > 30 orelse I rem 3 =/= 0],
    [?assertEqual(lists:member(I, Online), online(id(I))) || I <- lists:seq(1, 100)],
    ?assertEqual(lists:sort([id(I) || I <- Online]), lists:sort(q(Ctx, ["SMEMBERS", key(Ctx, <<"online">>)]))),
    ?assertMatch(#{presence_connections := 90}, stats()),
    ?assert(maps:get(presence_rewritten, stats()) >= 90).

redis_restarted_empty_gets_this_nodes_connections_back(Ctx = #{redis := Redis}) ->
    start(Ctx, []),
    T = now_ms(),
    [connect(channel(), id(I), <<"u">>, T) || I <- lists:seq(1, 40)],
    settle(),
    erh_test_redis:wipe(Redis),
    erh_test_redis:up(Redis),
    %% The first tick finds the liveness key gone: the node writes its live connections again.
    wait_stats(fun(#{presence_resyncs := N}) -> N >= 1 end),
    settle(),
    [?assert(online(id(I))) || I <- lists:seq(1, 40)],
    ?assertEqual(40, length(q(Ctx, ["SMEMBERS", key(Ctx, <<"online">>)]))).

%% Redis goes back to a snapshot taken before some writes it acknowledged, as after a failover to a
%% replica that was behind: the node's liveness key is still there, so only the write numbers tell.
%% The lost connects come back from the node's memory, and the lost disconnects (which the node no
%% longer holds) are found by scanning the boot's connections.
redis_that_lost_acknowledged_writes_is_repaired_from_memory(Ctx = #{redis := Redis}) ->
    start(Ctx, []),
    T = now_ms(),
    First = connect_clients(lists:seq(1, 40), T),
    settle(),
    <<"OK">> = q(Ctx, ["SAVE"]),
    [disconnect(Ch, id(I), <<"u">>, T, T + 1) || {I, Ch} <- First, I rem 2 =:= 0],
    [connect(channel(), id(I), <<"u">>, T + 2) || I <- lists:seq(41, 50)],
    settle(),
    ?assertMatch(#{presence_connections := 30, presence_lost_writes := 0}, stats()),
    erh_test_redis:crash(Redis),
    erh_test_redis:up(Redis),
    ?assertEqual(40, length(q(Ctx, ["SMEMBERS", key(Ctx, <<"online">>)]))),
    wait_stats(fun(#{presence_lost_writes := N, presence_resyncs := R}) -> N >= 1 andalso R >= 1 end),
    settle(),
    Online = [I || I <- lists:seq(1, 50), I > 40 orelse I rem 2 =:= 1],
    [?assertEqual({I, lists:member(I, Online)}, {I, online(id(I))}) || I <- lists:seq(1, 50)],
    ?assertEqual(lists:sort([id(I) || I <- Online]), lists:sort(q(Ctx, ["SMEMBERS", key(Ctx, <<"online">>)]))),
    Boot = q(Ctx, ["HGET", key(Ctx, <<"client:", (id(1))/binary>>), "boot"]),
    ?assertEqual(lists:sort([id(I) || I <- Online]),
                 lists:sort(q(Ctx, ["SMEMBERS", key(Ctx, <<"boot:", Boot/binary>>)]))),
    #{presence_lost_writes := Lost} = stats(),
    %% Once repaired, later ticks find nothing missing.
    timer:sleep(200),
    ?assertMatch(#{presence_lost_writes := Lost}, stats()).

scripts_flushed_from_redis_are_loaded_again(Ctx) ->
    start(Ctx, []),
    T = now_ms(),
    connect(channel(), <<"dev-5">>, <<"u">>, T),
    settle(),
    ?assert(online(<<"dev-5">>)),
    <<"OK">> = q(Ctx, ["SCRIPT", "FLUSH"]),
    connect(channel(), <<"dev-6">>, <<"u">>, T),
    settle(),
    ?assert(online(<<"dev-6">>)),                % the lookup connection reloads its script too
    ?assertMatch(#{presence_errors := 0}, stats()),
    ?assert(maps:get(redis_script_reloads, stats()) >= 1).

acl_user_and_password_and_a_refused_login(Ctx) ->
    Password = <<"s3cret-pw">>,
    <<"OK">> = q(Ctx, ["ACL", "SETUSER", "emqx-test", "on", <<">", Password/binary>>, "~*", "&*", "+@all"]),
    try
        start(Ctx, [{redis_username, "emqx-test"}, {redis_password, Password}]),
        connect(channel(), <<"dev-7">>, <<"u">>, now_ms()),
        settle(),
        ?assert(online(<<"dev-7">>)),
        erh_test_rabbit:stop_plugin(),
        start(Ctx, [{redis_username, "emqx-test"}, {redis_password, "wrong-password"}]),
        wait_stats(fun(#{redis_connect_failures := N}) -> N >= 2 end),
        {error, {redis, Why}} = emqx_rabbitmq_hook:presence(<<"dev-7">>),
        ?assertMatch({_, _}, binary:match(Why, <<"WRONGPASS">>)),
        ?assertEqual(nomatch, binary:match(Why, <<"wrong-password">>)),
        ?assertEqual(nomatch, binary:match(iolist_to_binary(io_lib:format("~p", [sys:get_status(
                                                                                  emqx_rabbitmq_hook_server)])),
                                           <<"wrong-password">>))
    after
        q(Ctx, ["ACL", "DELUSER", "emqx-test"])
    end.

redis_db_and_key_prefix_place_the_keys(Ctx) ->
    start(Ctx, [{redis_db, 5}, {redis_key_prefix, "iot:{p}:"}]),
    connect(channel(), <<"dev-8">>, <<"u">>, now_ms()),
    settle(),
    ?assert(online(<<"dev-8">>)),
    %% q/2 opens a new connection (db 0) each time: look with a script that selects db 5 itself.
    Db5 = q(Ctx, ["EVAL", "redis.call('SELECT', 5) return redis.call('EXISTS', KEYS[1])", 1,
                  "iot:{p}:client:dev-8"]),
    ?assertEqual(1, Db5),
    ?assertEqual(0, q(Ctx, ["EXISTS", "iot:{p}:client:dev-8"])).

hooks_return_at_once_while_redis_is_unreachable(Ctx) ->
    start(Ctx, [{redis_server, "127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port())},
                {presence_buffer_events, 1000}, {drain_timeout_ms, 100}]),
    ClientInfo = erh_test_emqx:clientinfo(emqx5, <<"d">>, <<"u">>),
    T = now_ms(),
    {Micros, _} = timer:tc(fun() ->
                                   [emqx_rabbitmq_hook:on_client_connected(
                                      ClientInfo, erh_test_emqx:conninfo(emqx5, <<"d">>, <<"u">>, T + I), [])
                                    || I <- lists:seq(1, 10000)]
                           end),
    %% Loose bound for a shared machine: 10,000 calls well under two seconds means no call waited.
    ?assert(Micros < 2000000),
    ?assertMatch(#{presence_queued := 1000, presence_dropped := 9000, presence_connections := 1,
                   redis_state := connecting}, stats()),
    ?assertMatch({error, {redis, _}}, emqx_rabbitmq_hook:presence(<<"d">>)).

%% A hung Redis (SIGSTOP): lookups on dirty I/O schedulers wait for one another at most the reply
%% timeout, and after a failed attempt fail at once, instead of waiting one after another.
lookups_fail_fast_while_redis_hangs(Ctx = #{redis := Redis}) ->
    start(Ctx, [{presence_timeout_ms, 500}, {reconnect_min_ms, 3000}, {reconnect_max_ms, 3000}]),
    connect(channel(), <<"dev-h">>, <<"u">>, now_ms()),
    settle(),
    ?assertMatch(#{online := true}, emqx_rabbitmq_hook:presence(<<"dev-h">>)),
    erh_test_redis:freeze(Redis),
    try
        Self = self(),
        T0 = erlang:monotonic_time(millisecond),
        [spawn_link(fun() -> Self ! {looked_up, emqx_rabbitmq_hook:presence(<<"dev-h">>)} end)
         || _ <- lists:seq(1, 8)],
        Results = [receive {looked_up, R} -> R after 30000 -> error(lookup_timeout) end || _ <- lists:seq(1, 8)],
        Ms = erlang:monotonic_time(millisecond) - T0,
        ?assertEqual([error], lists:usort([element(1, R) || R <- Results])),
        %% One after another they would take 8 times a connection attempt and a timeout (4 s and
        %% more); the first lookup takes two timeouts, the others fail at once or after one.
        ?assert(Ms < 2500),
        ?assertMatch({error, {redis, _}}, emqx_rabbitmq_hook:presence(<<"dev-h">>))
    after
        erh_test_redis:thaw(Redis)
    end,
    ?assert(erh_test_rabbit:wait_for(fun() -> is_map(emqx_rabbitmq_hook:presence(<<"dev-h">>)) end, 10000, 200)),
    ?assertMatch(#{online := true}, emqx_rabbitmq_hook:presence(<<"dev-h">>)).

presence_off_needs_no_redis(Ctx) ->
    start(Ctx, [{presence, false}, {redis_server, "127.0.0.1:1"}]),
    connect(channel(), <<"dev-9">>, <<"u">>, now_ms()),
    ?assertEqual({error, disabled}, emqx_rabbitmq_hook:presence(<<"dev-9">>)),
    ?assertMatch(#{redis_state := disabled, presence_queued := 0, presence_queue_depth := 0}, stats()).

%% The publishers and the presence writer are SCHED_BATCH threads (policy 3): woken by a hook call,
%% they do not take the CPU from the scheduler that made it. The VM's own threads are untouched.
delivery_threads_wait_for_the_schedulers_when_they_wake(Ctx) ->
    start(Ctx, [{publishers, 2}]),
    Policies = thread_policies(),
    ?assertEqual([{<<"erh_arena">>, 3}, {<<"erh_presence">>, 3}, {<<"erh_publisher_0">>, 3},
                  {<<"erh_publisher_1">>, 3}],
                 [T || T = {<<"erh_", _/binary>>, _} <- Policies]),
    ?assertEqual([0], lists:usort([P || {Name, P} <- Policies, binary:match(Name, <<"scheduler">>) =/= nomatch])).

%% {thread name, scheduling policy} of every thread of this node: field 41 of its stat.
thread_policies() ->
    lists:sort(erh_test_proc:threads(41)).
