%% End-to-end throughput: events per second from the first hook call to the confirm of the last
%% persistent message in a durable queue, checked by counting the queue; side by side in the same
%% run with the transport's limit (bench/raw_publish.c: rabbitmq-c alone, the same number of
%% messages of the same size, bare and with the plugin's AMQP properties) and with the naive
%% approach (erh_bench_naive). Every path publishes into a queue declared as the plugin declares it
%% by default (lazy, version 2); one more row shows the limit on a queue declared without arguments,
%% RabbitMQ 3.10's default, to show what that choice is worth. CPU per event, of the publishing
%% process and of RabbitMQ, says where the time goes whatever else the machine runs.
-module(erh_bench_throughput).

-behaviour(erh_bench).

-export([run/1]).

-define(EVENTS, 200000).
%% The naive approach waits for the broker twice per event: a smaller count, compared by rate.
-define(NAIVE_EVENTS, 20000).
-define(CALLERS, 4).
-define(NAIVE_CALLERS, 32).
-define(PAYLOADS, [200, 1024]).
-define(WINDOW, 1000).
%% Each path runs twice, in the order ours, limit, limit with properties, limit on a default queue,
%% then the same backwards (ours first: the limit publishes bodies as long as ours). A load on the
%% shared machine that grows or fades over the run then weighs on every path alike; each path keeps
%% its best run.
-define(ORDER, [limit, limit_props, limit_default, limit_default, limit_props, limit, ours]).
-define(COMPARED, [limit, limit_props, limit_default, ours]).
-define(TARGET_LIMIT, 0.9).
-define(TARGET_NAIVE, 15).
-define(PATHS, [limit, limit_props, ours, naive, limit_default]).

run(Ctx) ->
    Runs = [{Payload, compare(Ctx, Payload)} || Payload <- ?PAYLOADS],
    Json = [json_cost(Ctx, Payload) || Payload <- ?PAYLOADS],
    #{tables => [#{title => "End-to-end throughput (persistent messages, durable queue, one RabbitMQ node)",
                   columns => ["payload", "publisher", "events", "seconds", "events/s", "publisher CPU µs/event",
                               "RabbitMQ CPU µs/event", "in queue"],
                   rows => [row(Payload, Path, maps:get(Path, Paths)) || {Payload, Paths} <- Runs, Path <- ?PATHS],
                   notes => [io_lib:format(
                               "Counted from the first hook call (or publish) to the confirm of the last message; "
                               "best of 2 runs taken in turns (ABCDDCBA) for every row but the naive one. Queues are "
                               "durable and declared as the plugin declares them by default (x-queue-mode lazy, "
                               "x-queue-version 2), except in the last row: no arguments, RabbitMQ 3.10's default "
                               "(an in-memory classic queue, version 1). The limit: one rabbitmq-c "
                               "connection, confirms in a window of ~b, bodies as long as ours; bare (delivery "
                               "mode only) or with the properties and headers the plugin sets. Ours: default "
                               "settings (1 publisher, window 1024), ~b processes calling the hook. Naive: ~b "
                               "processes, a pool of 10 amqp_client connections, a channel per event and no "
                               "confirms, counted when the queue holds every event. Publisher CPU: the BEAM "
                               "node (ours, naive) or raw_publish (limit); of ours, JSON encoding (erh_json.c) "
                               "alone takes ~ts µs per event (bench/json_cost.c).",
                               [?WINDOW, ?CALLERS, ?NAIVE_CALLERS, lists:join(" and ", Json)])]},
                 #{title => "Ratios (same run)",
                   columns => ["payload", "ours / limit", "target", "ours / limit with our properties",
                               "ours / naive", "target", "naive / ours, publisher CPU per event",
                               "ours / limit on a default queue"],
                   rows => [ratios(Payload, Paths) || {Payload, Paths} <- Runs]}],
      data => #{throughput => [[payload(Payload) | [round(maps:get(rate, maps:get(Path, Paths))) || Path <- ?PATHS]]
                               || {Payload, Paths} <- Runs]}}.

compare(Ctx, Payload) ->
    N = erh_bench:scaled(Ctx, ?EVENTS) div ?CALLERS * ?CALLERS,
    First = ours(Ctx, Payload, N),
    Body = maps:get(body_bytes, First),
    Runs = [{ours, First} | [{Path, path(Ctx, Path, Payload, Body, N)} || Path <- ?ORDER]],
    Best = maps:from_list([{Path, best([Run || {P, Run} <- Runs, P =:= Path])} || Path <- ?COMPARED]),
    NaiveN = erh_bench:scaled(Ctx, ?NAIVE_EVENTS) div ?NAIVE_CALLERS * ?NAIVE_CALLERS,
    Best#{naive => naive(Ctx, Payload, NaiveN)}.

path(Ctx, ours, Payload, _Body, N) -> ours(Ctx, Payload, N);
path(Ctx, limit, _Payload, Body, N) -> limit(Ctx, "bare", "lazy", Body, N);
path(Ctx, limit_props, _Payload, Body, N) -> limit(Ctx, "plugin", "lazy", Body, N);
path(Ctx, limit_default, _Payload, Body, N) -> limit(Ctx, "bare", "default", Body, N).

best(Runs) ->
    lists:last(lists:sort(fun(#{rate := A}, #{rate := B}) -> A =< B end, Runs)).

%% What encoding one event costs a publisher thread, in µs, with its payload size.
json_cost(Ctx, Payload) ->
    #{"ns" := Ns} = erh_bench:helper(Ctx, ["json_cost", integer_to_list(Payload), "200000"]),
    io_lib:format("~.1f (~ts)", [list_to_integer(Ns) / 1000, payload(Payload)]).

%% The plugin with its default publisher settings; the buffer holds every event of the run below
%% its high-water mark (three quarters of it), where the memory queue would move to the disk spool:
%% this measures the memory path, and the run fails if anything was spooled.
ours(Ctx = #{rabbit := Rabbit}, Payload, N) ->
    Queue = <<"bench.e2e">>,
    ok = erh_bench:start_plugin(Ctx, up, [{exchange, "bench.e2e"}, {queues, [{Queue, ["#"]}]},
                                          {buffer_events, 2 * N}]),
    Run = timed(Ctx, fun() ->
                             erh_bench:in_parallel(?CALLERS, fun(I) -> publish(I, Payload, N div ?CALLERS) end),
                             erh_bench:wait_until(fun() -> confirmed() >= N end, 600000)
                     end),
    #{dropped := 0, nacked := 0, returned := 0, spooled := 0} = emqx_rabbitmq_hook:stats(),
    erh_bench:stop_plugin(),
    InQueue = erh_test_rabbit:queue_length(Rabbit, Queue),
    [#{body := Body}] = erh_test_rabbit:fetch(Rabbit, Queue, 1),
    erh_bench:delete_queue(Rabbit, Queue),
    (result(Run, N, InQueue))#{body_bytes => byte_size(Body)}.

publish(I, Payload, Count) ->
    Message = erh_bench:message(<<"bench-", (integer_to_binary(I))/binary>>, Payload, 0),
    [{ok, _} = emqx_rabbitmq_hook:on_message_publish(setelement(2, Message, <<Seq:128>>), [])
     || Seq <- lists:seq(1, Count)],
    ok.

confirmed() ->
    maps:get(confirmed, emqx_rabbitmq_hook:stats()).

%% rabbitmq-c alone: its own clock runs from its first publish (after connecting) to its last confirm.
limit(Ctx = #{rabbit := Rabbit}, Properties, QueueArgs, BodyBytes, N) ->
    Queue = <<"bench.raw">>,
    Rabbit0 = erh_bench:cpu_seconds(erh_bench:rabbit_os_pid(Rabbit)),
    #{"confirmed" := Confirmed, "seconds" := Seconds, "cpu" := Cpu} =
        erh_bench:helper(Ctx, ["raw_publish", "127.0.0.1", integer_to_list(erh_test_rabbit:port(Rabbit)),
                               "bench.raw", binary_to_list(Queue), integer_to_list(N),
                               integer_to_list(BodyBytes), integer_to_list(?WINDOW), Properties, QueueArgs]),
    RabbitCpu = erh_bench:cpu_seconds(erh_bench:rabbit_os_pid(Rabbit)) - Rabbit0,
    N = list_to_integer(Confirmed),
    InQueue = erh_test_rabbit:queue_length(Rabbit, Queue),
    erh_bench:delete_queue(Rabbit, Queue),
    result(#{seconds => list_to_float(Seconds), cpu => list_to_float(Cpu), server_cpu => RabbitCpu}, N, InQueue).

naive(Ctx = #{rabbit := Rabbit}, Payload, N) ->
    Queue = <<"bench.naive">>,
    Pool = erh_bench_naive:start(Rabbit, <<"bench.naive">>, Queue),
    Run = timed(Ctx, fun() ->
                             erh_bench:in_parallel(?NAIVE_CALLERS,
                                                   fun(I) -> naive_publish(I, Payload, N div ?NAIVE_CALLERS, Pool) end),
                             erh_bench:wait_until(fun() -> erh_test_rabbit:queue_length(Rabbit, Queue) >= N end,
                                                  600000)
                     end),
    erh_bench_naive:stop(Pool),
    InQueue = erh_test_rabbit:queue_length(Rabbit, Queue),
    erh_bench:delete_queue(Rabbit, Queue),
    result(Run, N, InQueue).

naive_publish(I, Payload, Count, Pool) ->
    Message = erh_bench:message(<<"bench-", (integer_to_binary(I))/binary>>, Payload, 0),
    [{ok, _} = erh_bench_naive:on_message_publish(setelement(2, Message, <<Seq:128>>), Pool)
     || Seq <- lists:seq(1, Count)],
    ok.

timed(#{rabbit := Rabbit}, Fun) ->
    erh_bench:timed(erh_bench:rabbit_os_pid(Rabbit), Fun).

result(Run = #{seconds := Seconds}, N, InQueue) ->
    Run#{events => N, rate => erh_bench:rate(N, Seconds), in_queue => InQueue}.

row(Payload, Path, #{events := N, seconds := Seconds, rate := Rate, cpu := Cpu, server_cpu := RabbitCpu,
                     in_queue := InQueue}) ->
    [payload(Payload), name(Path), N, Seconds, round(Rate), 1.0e6 * Cpu / N, 1.0e6 * RabbitCpu / N, InQueue].

ratios(Payload, #{limit := #{rate := Limit}, limit_props := #{rate := LimitProps},
                  limit_default := #{rate := LimitDefault}, ours := #{rate := Ours} = OursRun,
                  naive := #{rate := Naive} = NaiveRun}) ->
    [payload(Payload), Ours / Limit, verdict(Ours / Limit >= ?TARGET_LIMIT, io_lib:format("≥ ~.1f", [?TARGET_LIMIT])),
     Ours / LimitProps, Ours / Naive, verdict(Ours / Naive >= ?TARGET_NAIVE, io_lib:format("≥ ~b", [?TARGET_NAIVE])),
     cpu_per_event(NaiveRun) / cpu_per_event(OursRun), Ours / LimitDefault].

cpu_per_event(#{cpu := Cpu, events := N}) -> Cpu / N.

verdict(true, Target) -> [Target, " met"];
verdict(false, Target) -> [Target, " missed"].

name(limit) -> "limit: rabbitmq-c alone";
name(limit_props) -> "limit with our properties";
name(ours) -> "emqx_rabbitmq_hook";
name(naive) -> "naive: amqp_client, channel per event";
name(limit_default) -> "limit on a queue without arguments".

payload(Bytes) when Bytes >= 1024 -> io_lib:format("~b KB", [Bytes div 1024]);
payload(Bytes) -> io_lib:format("~b B", [Bytes]).
