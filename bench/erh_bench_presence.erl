%% Presence: Redis updates per second for connect and disconnect events through the plugin (presence
%% on: hook call, presence queue, the presence thread's pipelined EVALSHA of priv/presence_write.lua),
%% counted when presence_applied reaches the total and checked in Redis; side by side in the same run
%% with the limit: the same script with the same arguments from one hiredis client, pipelined in
%% batches of the same size (bench/raw_presence.c, which builds its commands with the plugin's code).
-module(erh_bench_presence).

-behaviour(erh_bench).

-export([run/1]).

-define(CLIENTS, 100000).
-define(CALLERS, 4).
%% presence_batch's default: the plugin's pipelines are at most this long, and so are the limit's.
-define(BATCH, 256).
-define(NODE, "emqx@127.0.0.1").
%% Each path runs twice, in turns (ABBA), and keeps its best run, as the throughput section does.
-define(ORDER, [limit, ours, ours, limit]).
-define(PATHS, [limit, ours]).

run(Ctx) ->
    Redis = erh_test_redis:start(),
    try
        Clients = erh_bench:scaled(Ctx, ?CLIENTS) div (2 * ?CALLERS) * (2 * ?CALLERS),
        Runs = [{Path, path(Ctx, Redis, Path, Clients)} || Path <- ?ORDER],
        Best = maps:from_list([{Path, best([Run || {P, Run} <- Runs, P =:= Path])} || Path <- ?PATHS]),
        #{rate := Ours} = maps:get(ours, Best),
        #{rate := Limit} = maps:get(limit, Best),
        #{tables => [#{title => "Presence registry in Redis (connect and disconnect events)",
                       columns => ["writer", "clients", "updates", "seconds", "updates/s",
                                   "writer CPU µs/update", "Redis CPU µs/update", "online in Redis"],
                       rows => [row(Path, maps:get(Path, Best)) || Path <- ?PATHS],
                       notes => [io_lib:format(
                                   "Every client connects, then every second one disconnects: 1.5 updates per "
                                   "client, each changing the registry. Counted from the first hook call (or "
                                   "command) until every update is applied; best of 2 runs taken in turns (ABBA). "
                                   "The limit: one hiredis client, EVALSHA of priv/presence_write.lua with the "
                                   "plugin's keys and arguments, pipelined in batches of ~b (presence_batch's "
                                   "default). Ours: default presence settings, ~b processes calling the hooks. "
                                   "Writer CPU: the BEAM node (ours) or raw_presence (limit).",
                                   [?BATCH, ?CALLERS])]},
                     #{title => "Presence ratio (same run)",
                       columns => ["ours / limit"],
                       rows => [[Ours / Limit]]}],
          data => #{presence => [["connect/disconnect", round(Limit), round(Ours)]]}}
    after
        erh_test_redis:stop(Redis)
    end.

path(Ctx, Redis, Path, Clients) ->
    <<"OK">> = erh_test_redis:q(Redis, ["FLUSHALL"]),
    Prefix = atom_to_list(Path) ++ ":",
    Run = run_path(Ctx, Redis, Path, Prefix, Clients),
    Run#{clients => Clients, updates => updates(Clients), rate => erh_bench:rate(updates(Clients), maps:get(seconds, Run)),
         online => check(Redis, Prefix, Clients)}.

updates(Clients) -> Clients + Clients div 2.

%% The plugin with presence on and nothing for RabbitMQ: events names message_publish alone.
run_path(Ctx, Redis, ours, Prefix, Clients) ->
    ok = erh_bench:start_plugin(Ctx, up, [{presence, true}, {redis_server, erh_test_redis:server(Redis)},
                                          {redis_key_prefix, Prefix}, {node, ?NODE}, {events, [message_publish]},
                                          {presence_buffer_events, updates(Clients)}]),
    erh_bench:wait_until(fun() -> maps:get(redis_state, emqx_rabbitmq_hook:stats()) =:= connected end, 30000),
    Total = updates(Clients),
    Calls = fun() ->
                    erh_bench:in_parallel(?CALLERS, fun(J) -> calls(J, Clients) end),
                    erh_bench:wait_until(fun() -> applied() >= Total end, 600000)
            end,
    Run = erh_bench:timed(redis_os_pid(Redis), Calls),
    #{presence_applied := Total, presence_ignored := 0, presence_dropped := 0, presence_errors := 0} =
        emqx_rabbitmq_hook:stats(),
    erh_bench:stop_plugin(),
    Run;
run_path(Ctx, Redis, limit, Prefix, Clients) ->
    RedisPid = redis_os_pid(Redis),
    Redis0 = erh_bench:cpu_seconds(RedisPid),
    #{"updates" := Updates, "seconds" := Seconds, "cpu" := Cpu} =
        erh_bench:helper(Ctx, ["raw_presence", "127.0.0.1", integer_to_list(erh_test_redis:port(Redis)),
                               filename:join(code:priv_dir(emqx_rabbitmq_hook), "presence_write.lua"),
                               Prefix, ?NODE, integer_to_list(Clients), integer_to_list(?BATCH)]),
    true = list_to_integer(Updates) =:= updates(Clients),
    #{seconds => list_to_float(Seconds), cpu => list_to_float(Cpu),
      server_cpu => erh_bench:cpu_seconds(RedisPid) - Redis0}.

%% Caller J connects clients J, J + CALLERS, ..., then disconnects the even ones among them. Each
%% client has its own connected_at, so conn_ids (node, caller pid, connected_at) never repeat.
calls(J, Clients) ->
    Mine = lists:seq(J, Clients, ?CALLERS),
    T0 = erlang:system_time(millisecond),
    [ok = emqx_rabbitmq_hook:on_client_connected(client_info(I), conn_info(I, T0), []) || I <- Mine],
    [ok = emqx_rabbitmq_hook:on_client_disconnected(client_info(I), normal,
                                                    (conn_info(I, T0))#{disconnected_at => T0 + I + 1,
                                                                        connected => false}, [])
     || I <- Mine, I rem 2 =:= 0],
    ok.

client_info(I) -> erh_bench:client_info(client_id(I)).

conn_info(I, T0) -> (erh_bench:conn_info(client_id(I)))#{connected_at => T0 + I}.

client_id(I) -> <<"bench-", (integer_to_binary(I))/binary>>.

applied() ->
    maps:get(presence_applied, emqx_rabbitmq_hook:stats()).

%% The registry holds every client, and the odd ones alone are online; returns how many are.
check(Redis, Prefix, Clients) ->
    Online = erh_test_redis:q(Redis, ["SCARD", Prefix ++ "online"]),
    Online = Clients - Clients div 2,
    <<"0">> = erh_test_redis:q(Redis, ["HGET", Prefix ++ "client:bench-2", "live"]),
    <<"1">> = erh_test_redis:q(Redis, ["HGET", Prefix ++ "client:bench-1", "live"]),
    Online.

%% The Redis server's OS process, from the pid file test/support/redis.sh gives it.
redis_os_pid(#{dir := Dir}) ->
    {ok, Pid} = file:read_file(filename:join(Dir, "redis.pid")),
    binary_to_list(string:trim(Pid)).

best(Runs) ->
    lists:last(lists:sort(fun(#{rate := A}, #{rate := B}) -> A =< B end, Runs)).

row(Path, #{clients := Clients, updates := N, seconds := Seconds, rate := Rate, cpu := Cpu, server_cpu := RedisCpu,
            online := Online}) ->
    [name(Path), Clients, N, Seconds, round(Rate), 1.0e6 * Cpu / N, 1.0e6 * RedisCpu / N, Online].

name(limit) -> "limit: hiredis, pipelined EVALSHA";
name(ours) -> "emqx_rabbitmq_hook".
