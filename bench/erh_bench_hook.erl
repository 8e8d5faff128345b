%% Hook cost: nanoseconds per call of each EMQX callback, timed one call at a time from several
%% processes at once, with RabbitMQ up (publishers busy sending what the calls queue) and down
%% (everything buffered). The buffer holds every call of a run, so each call takes the accept path.
%%
%% Events are cut from memory the plugin's arena thread has already touched (c_src/erh_arena.h), so
%% a call pays no page fault while that thread keeps up. Flat out, publish calls fill memory faster
%% than it does (over a gigabyte a second), and the calls beyond it take their memory from malloc:
%% in the node's first run that memory is new, and the kernel faults each page in (here about
%% 2.5 µs per 4 KB). That run is shown as its own row; later runs get back what malloc kept, as
%% in a node that has been running a while. This section runs first for that reason.
-module(erh_bench_hook).

-behaviour(erh_bench).

-export([run/1]).

-define(CALLS, 1000000).
-define(CALLERS, 4).
-define(PAYLOAD, 200).
%% A caller yields this often, so a timing never spans the slice of another Erlang process: like
%% an EMQX channel process, woken by a packet, it runs its hooks within one slice.
-define(YIELD_EVERY, 16).
-define(KINDS, [publish, connected, disconnected]).

run(Ctx) ->
    Calls = erh_bench:scaled(Ctx, ?CALLS) div ?CALLERS * ?CALLERS,
    Clock = timed_run(nothing, Calls),
    First = (measure(Ctx, down, publish, Calls))#{fresh_memory => true},
    Runs = [First | [measure(Ctx, Broker, Kind, Calls) || Broker <- [up, down], Kind <- ?KINDS]]
        ++ beside_load(Ctx, fun() -> [(measure(Ctx, down, Kind, Calls))#{busy => true} || Kind <- ?KINDS] end),
    #{tables => [#{title => "Hook cost (ns per call)",
                   columns => ["callback", "RabbitMQ", "calls", "p50", "p99", "p999", "calls/s",
                               "scheduler use"],
                   rows => [row(Run) || Run <- [Clock | Runs]],
                   notes => [io_lib:format("~b processes call at once on ~b schedulers; ~b-byte payload; "
                                           "each timing includes two clock reads (first row). "
                                           "Down: the plugin's server is a port with no listener, "
                                           "as when the broker is stopped. Down, RabbitMQ busy: the same "
                                           "while rabbitmq-c alone (raw_publish) keeps the bench's RabbitMQ "
                                           "as busy as the plugin does when up, so the calls share the "
                                           "cores with RabbitMQ but the plugin sends nothing.",
                                           [?CALLERS, erlang:system_info(schedulers), ?PAYLOAD])]}],
      data => #{hook => [[label(Run), P50, P99, P999] || Run = #{p := [P50, P99, P999]} <- Runs]}}.

measure(Ctx = #{rabbit := Rabbit}, Broker, Kind, Calls) ->
    Queue = <<"bench.hook">>,
    %% Memory only: the buffer holds the whole run, and with a disk spool the stop would write
    %% what is left of it to disk.
    ok = erh_bench:start_plugin(Ctx, Broker, [{exchange, "bench.hook"}, {queues, [{Queue, ["#"]}]},
                                              {buffer_events, Calls}, {drain_timeout_ms, 0},
                                              {spool_max_bytes, 0}]),
    Run = timed_run(Kind, Calls),
    #{received := Received, dropped := Dropped} = emqx_rabbitmq_hook:stats(),
    erh_bench:stop_plugin(),
    Broker =:= up andalso erh_bench:delete_queue(Rabbit, Queue),
    {Calls, 0} = {Received, Dropped},
    Run#{broker => Broker}.

%% Run Fun while rabbitmq-c publishes into the bench's RabbitMQ as fast as it confirms; it has
%% started publishing when Fun starts.
beside_load(Ctx = #{rabbit := Rabbit}, Fun) ->
    Queue = <<"bench.load">>,
    Load = erh_bench:helper_start(Ctx, ["raw_publish", "127.0.0.1", integer_to_list(erh_test_rabbit:port(Rabbit)),
                                        "bench.load", binary_to_list(Queue), "1000000000", integer_to_list(?PAYLOAD),
                                        "1000", "bare", "lazy"]),
    try
        erh_bench:wait_until(fun() -> has_messages(Rabbit, Queue) end, 30000),
        Fun()
    after
        erh_bench:helper_stop(Load),
        erh_bench:delete_queue(Rabbit, Queue)
    end.

%% False until raw_publish has declared the queue and put a message in it.
has_messages(Rabbit, Queue) ->
    try erh_test_rabbit:queue_length(Rabbit, Queue) > 0
    catch exit:_NotFound -> false
    end.

%% Calls callbacks of Kind from ?CALLERS processes; percentiles, rate and scheduler use.
timed_run(Kind, Calls) ->
    Hist = erh_bench_hist:new(),
    S0 = erh_bench:sched_sample(),
    T0 = erlang:monotonic_time(),
    erh_bench:in_parallel(?CALLERS, fun(I) -> calls(Kind, Calls div ?CALLERS, args(Kind, I), Hist) end),
    Seconds = erlang:convert_time_unit(erlang:monotonic_time() - T0, native, microsecond) / 1.0e6,
    Util = erh_bench:sched_util(S0, erh_bench:sched_sample()),
    Calls = erh_bench_hist:count(Hist),
    #{kind => Kind, calls => Calls, rate => erh_bench:rate(Calls, Seconds), util => Util,
      p => [erlang:convert_time_unit(erh_bench_hist:percentile(Hist, Q), native, nanosecond)
            || Q <- [0.5, 0.99, 0.999]]}.

args(publish, I) ->
    erh_bench:message(client_id(I), ?PAYLOAD, 0);
args(connected, I) ->
    {erh_bench:client_info(client_id(I)), erh_bench:conn_info(client_id(I))};
args(disconnected, I) ->
    ConnInfo = erh_bench:conn_info(client_id(I)),
    {erh_bench:client_info(client_id(I)), ConnInfo#{disconnected_at => erlang:system_time(millisecond),
                                                    connected => false}};
args(nothing, _I) ->
    none.

client_id(I) ->
    <<"bench-", (integer_to_binary(I))/binary>>.

calls(_Kind, 0, _Args, _Hist) ->
    ok;
calls(Kind, N, Args, Hist) ->
    erh_bench_hist:record(Hist, call(Kind, N, Args)),
    N rem ?YIELD_EVERY =:= 0 andalso erlang:yield(),
    calls(Kind, N - 1, Args, Hist).

%% One timed call in native time units; each message gets its own id, as in EMQX.
call(publish, N, Message0) ->
    Message = setelement(2, Message0, <<N:128>>),
    T0 = erlang:monotonic_time(),
    emqx_rabbitmq_hook:on_message_publish(Message, []),
    erlang:monotonic_time() - T0;
call(connected, _N, {ClientInfo, ConnInfo}) ->
    T0 = erlang:monotonic_time(),
    emqx_rabbitmq_hook:on_client_connected(ClientInfo, ConnInfo, []),
    erlang:monotonic_time() - T0;
call(disconnected, _N, {ClientInfo, ConnInfo}) ->
    T0 = erlang:monotonic_time(),
    emqx_rabbitmq_hook:on_client_disconnected(ClientInfo, normal, ConnInfo, []),
    erlang:monotonic_time() - T0;
call(nothing, _N, none) ->
    T0 = erlang:monotonic_time(),
    erlang:monotonic_time() - T0.

row(Run = #{calls := Calls, p := [P50, P99, P999], rate := Rate, util := Util}) ->
    [callback(Run), broker(Run), Calls, P50, P99, P999, round(Rate),
     [integer_to_list(round(Util)), "%"]].

callback(#{kind := publish}) -> "on_message_publish";
callback(#{kind := connected}) -> "on_client_connected";
callback(#{kind := disconnected}) -> "on_client_disconnected";
callback(#{kind := nothing}) -> "(clock reads only)".

broker(#{fresh_memory := true}) -> "down, fresh memory";
broker(#{busy := true}) -> "down, RabbitMQ busy";
broker(#{broker := Broker}) -> atom_to_list(Broker);
broker(#{}) -> "-".

label(Run = #{kind := Kind}) ->
    io_lib:format("~s ~s", [Kind, broker(Run)]).
