%% Nothing lost: RabbitMQ outages in the middle of a stream, stops with events waiting, a full
%% spool, a torn spool file, a dead first server and a frozen broker, all against a real RabbitMQ.
-module(emqx_rabbitmq_hook_delivery_tests).

-include_lib("eunit/include/eunit.hrl").

-import(erh_test_emqx, [message/5]).

%% A logger handler that sends each warning, formatted, to the test process.
-export([log/2]).

delivery_test_() ->
    erh_test_fixture:each(fun erh_test_rabbit:start/0, fun erh_test_rabbit:stop/1, 300, tests(), fun run/2).

tests() ->
    [fun every_event_arrives_in_order_when_rabbitmq_restarts_mid_stream/1,
     fun events_waiting_at_stop_arrive_after_the_next_start/1,
     fun a_full_spool_drops_exactly_what_stats_count/1,
     fun a_torn_spool_file_delivers_every_whole_record/1,
     fun the_second_server_takes_over_when_the_first_is_down/1,
     fun a_silent_broker_is_noticed_by_heartbeats/1,
     fun unroutable_messages_are_kept_in_the_unroutable_queue/1,
     fun spool_folders_no_publisher_reads_are_named_at_start/1,
     fun hook_calls_cost_the_same_with_rabbitmq_down/1,
     fun hook_calls_take_no_page_fault_while_the_buffer_grows/1,
     fun a_full_buffer_holds_the_memory_of_its_events_only/1].

run(Test, Rabbit) ->
    Unique = integer_to_binary(erlang:unique_integer([positive])),
    Spool = filename:join([maps:get(dir, Rabbit), "spool", binary_to_list(Unique)]),
    Ctx = #{rabbit => Rabbit, exchange => <<"ex.", Unique/binary>>, queue => <<"q.", Unique/binary>>,
            spool => Spool},
    try Test(Ctx)
    after erh_test_rabbit:stop_plugin()
    end.

%% The plugin with the context's exchange, queue and spool folder, and Overrides on top.
start(#{rabbit := Rabbit, exchange := Ex, queue := Q, spool := Spool}, Overrides) ->
    Env = erh_test_rabbit:plugin_env(Rabbit, [{exchange, Ex}, {queues, [{Q, ["#"]}]}, {spool_dir, Spool},
                                              {drain_timeout_ms, 300} | Overrides]),
    {ok, _} = erh_test_rabbit:start_plugin(Env),
    ok.

stats() -> emqx_rabbitmq_hook:stats().

%% Client Client publishes messages First..Last, payload = the number, pausing Pause ms every Every.
publish(Client, First, Last, Every, Pause) ->
    [begin
         {ok, _} = emqx_rabbitmq_hook:on_message_publish(
                     message(emqx4, Client, <<"u">>, <<"t/", Client/binary>>, integer_to_binary(I)), []),
         I rem Every =:= 0 andalso timer:sleep(Pause)
     end || I <- lists:seq(First, Last)],
    ok.

%% Clients publishing at once, each in its own process as EMQX channels do; returns when all are done.
publish_from(Clients, PerClient, Every, Pause) ->
    Self = self(),
    Pids = [spawn_link(fun() -> publish(C, 1, PerClient, Every, Pause), Self ! {done, self()} end) || C <- Clients],
    fun() -> [receive {done, P} -> ok end || P <- Pids], ok end.

clients(N) -> [<<"client-", (integer_to_binary(I))/binary>> || I <- lists:seq(1, N)].

wait_until(Fun, TimeoutMs) ->
    ?assert(erh_test_rabbit:wait_for(Fun, TimeoutMs, 50)).

all_confirmed() ->
    #{queued := Queued, confirmed := Confirmed, unroutable := Rerouted} = stats(),
    Confirmed - Rerouted >= Queued.

%% Every message in the queue, read once it holds all the plugin confirmed.
drain_queue(#{rabbit := Rabbit, queue := Q}) ->
    erh_test_rabbit:fetch_json(Rabbit, Q, erh_test_rabbit:queue_length(Rabbit, Q)).

%% {Unique, Duplicates}: each message id once, in arrival order; and how many arrived again.
dedupe(Messages) ->
    {Unique, _} = lists:foldl(fun(M = #{props := #{message_id := Id}}, {Acc, Seen}) ->
                                      case sets:is_element(Id, Seen) of
                                          true -> {Acc, Seen};
                                          false -> {[M | Acc], sets:add_element(Id, Seen)}
                                      end
                              end, {[], sets:new()}, Messages),
    {lists:reverse(Unique), length(Messages) - length(Unique)}.

%% Client => payload numbers in arrival order.
by_client(Messages) ->
    lists:foldr(fun(#{json := #{<<"from_client_id">> := C, <<"payload">> := P}}, Acc) ->
                        maps:update_with(C, fun(L) -> [binary_to_integer(P) | L] end, [binary_to_integer(P)], Acc)
                end, #{}, Messages).

report(Format, Args) ->
    io:format(user, "~n    " ++ Format ++ "~n", Args).

%%--------------------------------------------------------------------
%% Tests
%%--------------------------------------------------------------------

every_event_arrives_in_order_when_rabbitmq_restarts_mid_stream(Ctx = #{rabbit := Rabbit}) ->
    start(Ctx, [{publishers, 2}]),
    Clients = clients(20),
    PerClient = 1000,
    %% About 8 s of traffic: 20 clients, 5 messages every 40 ms each.
    Done = publish_from(Clients, PerClient, 5, 40),
    wait_until(fun() -> maps:get(confirmed, stats()) >= 3000 end, 30000),
    ok = erh_test_rabbit:pause(Rabbit),
    AtStop = maps:get(received, stats()),
    timer:sleep(3000),
    ok = erh_test_rabbit:resume(Rabbit),
    Done(),
    wait_until(fun all_confirmed/0, 120000),
    {Unique, Duplicates} = dedupe(drain_queue(Ctx)),
    Total = length(Clients) * PerClient,
    #{retried := Retried, spooled := Spooled, replayed := Replayed, reconnects := Reconnects,
      dropped := Dropped} = stats(),
    report("RabbitMQ stopped after ~b of ~b events for ~~3 s: received ~b unique, ~b duplicates "
           "(retried ~b), spooled ~b, replayed ~b, reconnects ~b, dropped ~b",
           [AtStop, Total, length(Unique), Duplicates, Retried, Spooled, Replayed, Reconnects, Dropped]),
    ?assert(AtStop < Total),
    ?assertEqual(Total, length(Unique)),
    ?assertEqual(0, Dropped),
    ?assert(Duplicates =< Retried),
    ?assert(Reconnects >= 2),
    Expected = lists:seq(1, PerClient),
    [?assertEqual({C, Expected}, {C, Got}) || {C, Got} <- maps:to_list(by_client(Unique))].

events_waiting_at_stop_arrive_after_the_next_start(Ctx = #{rabbit := Rabbit}) ->
    ok = erh_test_rabbit:pause(Rabbit),
    start(Ctx, []),
    publish(<<"waiting">>, 1, 5000, 1000, 0),
    #{queued := 5000} = stats(),
    erh_test_rabbit:stop_plugin(),
    ok = erh_test_rabbit:resume(Rabbit),
    start(Ctx, []),
    wait_until(fun() -> maps:get(confirmed, stats()) >= 5000 end, 60000),
    #{replayed := Replayed, spool_events := Left} = stats(),
    {Unique, Duplicates} = dedupe(drain_queue(Ctx)),
    report("stopped with 5000 events waiting: replayed ~b after the restart, received ~b unique, ~b duplicates",
           [Replayed, length(Unique), Duplicates]),
    ?assertEqual(5000, Replayed),
    ?assertEqual(0, Left),
    ?assertEqual(#{<<"waiting">> => lists:seq(1, 5000)}, by_client(Unique)).

a_full_spool_drops_exactly_what_stats_count(Ctx = #{rabbit := Rabbit}) ->
    ok = erh_test_rabbit:pause(Rabbit),
    start(Ctx, [{buffer_events, 500}, {spool_max_bytes, 64 * 1024}]),
    N = 5000,
    %% Slow enough for the publisher to move memory to the spool until the spool is full.
    publish(<<"bounded">>, 1, N, 50, 5),
    #{dropped := Dropped, spool_bytes := SpoolBytes} = stats(),
    ok = erh_test_rabbit:resume(Rabbit),
    wait_until(fun all_confirmed/0, 60000),
    {Unique, Duplicates} = dedupe(drain_queue(Ctx)),
    report("spool bound 65536 bytes (~b used), memory 500 events: ~b of ~b dropped, ~b delivered, ~b duplicates",
           [SpoolBytes, Dropped, N, length(Unique), Duplicates]),
    ?assert(Dropped > 0),
    ?assert(SpoolBytes =< 64 * 1024),
    ?assertEqual(Dropped, maps:get(dropped, stats())),
    ?assertEqual(N - Dropped, length(Unique)),
    %% What was kept is the oldest: the events before the bounds filled.
    ?assertEqual(#{<<"bounded">> => lists:seq(1, N - Dropped)}, by_client(Unique)).

a_torn_spool_file_delivers_every_whole_record(Ctx = #{rabbit := Rabbit, spool := Spool}) ->
    ok = erh_test_rabbit:pause(Rabbit),
    start(Ctx, []),
    publish(<<"torn">>, 1, 1000, 1000, 0),
    wait_until(fun() -> maps:get(spool_events, stats()) =:= 1000 end, 20000),
    erh_test_rabbit:stop_plugin(),
    [Segment] = filelib:wildcard(filename:join([Spool, "0", "*.seg"])),
    Size = filelib:file_size(Segment),
    {ok, File} = file:open(Segment, [read, write]),
    {ok, _} = file:position(File, Size - 7), %% inside the last record
    ok = file:truncate(File),
    ok = file:close(File),
    ok = erh_test_rabbit:resume(Rabbit),
    start(Ctx, []),
    wait_until(fun() -> maps:get(confirmed, stats()) >= 999 end, 60000),
    #{spool_corrupt := Cut} = stats(),
    {Unique, _} = dedupe(drain_queue(Ctx)),
    report("spool segment cut 7 bytes short: ~b records delivered, ~b cut", [length(Unique), Cut]),
    ?assertEqual(1, Cut),
    ?assertEqual(#{<<"torn">> => lists:seq(1, 999)}, by_client(Unique)).

the_second_server_takes_over_when_the_first_is_down(Ctx = #{rabbit := Rabbit}) ->
    Dead = "127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port()),
    Live = "127.0.0.1:" ++ integer_to_list(erh_test_rabbit:port(Rabbit)),
    start(Ctx, [{servers, [Dead, Live]}]),
    publish(<<"failover">>, 1, 100, 100, 0),
    wait_until(fun all_confirmed/0, 20000),
    #{connect_failures := Failures, connections := [#{server := Server, state := connected}]} = stats(),
    {Unique, _} = dedupe(drain_queue(Ctx)),
    ?assert(Failures >= 1),
    ?assertEqual(list_to_binary(Live), Server),
    ?assertEqual(100, length(Unique)).

a_silent_broker_is_noticed_by_heartbeats(Ctx = #{rabbit := Rabbit}) ->
    start(Ctx, [{heartbeat, 1}]),
    wait_until(fun() -> [#{state := State}] = maps:get(connections, stats()), State =:= connected end, 20000),
    ok = erh_test_rabbit:freeze(Rabbit),
    T0 = erlang:monotonic_time(millisecond),
    Noticed = erh_test_rabbit:wait_for(
                fun() -> [#{state := State}] = maps:get(connections, stats()), State =/= connected end, 20000, 50),
    Ms = erlang:monotonic_time(millisecond) - T0,
    ok = erh_test_rabbit:thaw(Rabbit),
    report("a frozen broker was noticed after ~b ms with a 1 s heartbeat", [Ms]),
    ?assert(Noticed),
    %% rabbitmq-c gives up after two silent heartbeat intervals; allow for a busy machine.
    ?assert(Ms < 8000),
    publish(<<"after">>, 1, 10, 10, 0),
    wait_until(fun all_confirmed/0, 60000).

unroutable_messages_are_kept_in_the_unroutable_queue(Ctx = #{rabbit := Rabbit, queue := Q}) ->
    Unroutable = <<Q/binary, ".unroutable">>,
    start(Ctx, [{queues, [{Q, ["message.bound"]}]}, {unroutable_queue, Unroutable},
                {routing_keys, #{message_publish => "message.${clientid}"}}]),
    publish(<<"bound">>, 1, 3, 3, 0),
    publish(<<"stray">>, 1, 2, 2, 0),
    wait_until(fun() -> maps:get(confirmed, stats()) >= 7 end, 20000),
    ?assertMatch(#{returned := 2, unroutable := 2, dropped := 0}, stats()),
    ?assertEqual(#{<<"bound">> => [1, 2, 3]}, by_client(drain_queue(Ctx))),
    Kept = erh_test_rabbit:fetch_json(Rabbit, Unroutable, 2),
    ?assertEqual(#{<<"stray">> => [1, 2]}, by_client(Kept)),
    ?assertEqual([<<Unroutable/binary>>, <<Unroutable/binary>>], [K || #{routing_key := K} <- Kept]).

spool_folders_no_publisher_reads_are_named_at_start(Ctx = #{rabbit := Rabbit, spool := Spool}) ->
    ok = erh_test_rabbit:pause(Rabbit),
    start(Ctx, [{publishers, 2}]),
    [publish(C, 1, 20, 20, 0) || C <- clients(10)],
    wait_until(fun() -> maps:get(spool_events, stats()) =:= 200 end, 20000),
    erh_test_rabbit:stop_plugin(),
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => self(), level => warning}),
    try
        start(Ctx, [{publishers, 1}]),
        Unread = filename:join(Spool, "1"),
        ?assert(lists:any(fun(Line) -> string:find(Line, Unread ++ " holds events") =/= nomatch end,
                          warnings(2000)))
    after
        logger:remove_handler(?MODULE),
        ok = erh_test_rabbit:resume(Rabbit)
    end.

log(#{level := warning, msg := Msg}, #{config := Pid}) ->
    Text = case Msg of
               {string, String} -> String;
               {report, Report} -> io_lib:format("~0tp", [Report]);
               {Format, Args} -> io_lib:format(Format, Args)
           end,
    Pid ! {warning, lists:flatten(Text)},
    ok;
log(_Event, _Config) ->
    ok.

%% The warnings logged within Ms.
warnings(Ms) ->
    receive {warning, Line} -> [Line | warnings(Ms)]
    after Ms -> []
    end.

hook_calls_cost_the_same_with_rabbitmq_down(Ctx = #{rabbit := Rabbit}) ->
    Calls = 20000,
    Msg = message(emqx4, <<"timed">>, <<"u">>, <<"t">>, binary:copy(<<"x">>, 200)),
    Time = fun() ->
                   {Micros, _} = timer:tc(fun() -> [emqx_rabbitmq_hook:on_message_publish(Msg, [])
                                                    || _ <- lists:seq(1, Calls)] end),
                   Micros
           end,
    start(Ctx, []),
    Up = Time(),
    erh_test_rabbit:stop_plugin(),
    ok = erh_test_rabbit:pause(Rabbit),
    start(Ctx, []),
    Down = Time(),
    erh_test_rabbit:stop_plugin(),
    ok = erh_test_rabbit:resume(Rabbit),
    report("~b hook calls: ~b us with RabbitMQ up, ~b us with it down", [Calls, Up, Down]),
    %% Loose: a shared machine is noisy; a call that waited on the broker would cost milliseconds.
    ?assert(Down < 3 * Up + 500000).

%% RabbitMQ unreachable and no spool: every event stays in memory, in pages never used before.
%% Writing such a page faults, a few microseconds each on a virtual machine; the arena's filler
%% thread has written them before the hook calls cut events from them.
hook_calls_take_no_page_fault_while_the_buffer_grows(Ctx) ->
    Dead = "127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port()),
    start(Ctx, [{servers, [Dead]}, {spool_max_bytes, 0}, {buffer_events, 100000}]),
    Msg = message(emqx5, <<"faults">>, <<"u">>, <<"t">>, binary:copy(<<"x">>, 1000)),
    Batches = 40,
    Batch = 1000,
    Before = scheduler_page_faults(),
    %% A pause between batches lets the filler, which never takes a CPU from a scheduler, keep up.
    [begin publish_times(Msg, Batch), timer:sleep(2) end || _ <- lists:seq(1, Batches)],
    Faults = scheduler_page_faults() - Before,
    ?assertEqual(Batches * Batch, maps:get(queue_depth, stats())),
    Pages = Batches * Batch * byte_size(element(8, Msg)) div 4096,
    report("~b events buffered in ~b new pages: ~b page faults on the schedulers", [Batches * Batch, Pages, Faults]),
    ?assert(Faults < Pages div 10).

%% RabbitMQ unreachable: the memory queue fills, the spool takes from it at the disk's pace, and the
%% hook calls, faster, are mostly refused. The events kept are the ones accepted, one after the
%% other in the buffer's chunks, so the memory holds them and not the gaps of the refused ones.
a_full_buffer_holds_the_memory_of_its_events_only(Ctx) ->
    Dead = "127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port()),
    Buffer = 20000,
    start(Ctx, [{servers, [Dead]}, {buffer_events, Buffer}]),
    Msg = message(emqx5, <<"full">>, <<"u">>, <<"t">>, binary:copy(<<"x">>, 200)),
    Callers = [spawn_monitor(fun() -> publish_times(Msg, 100000) end) || _ <- lists:seq(1, 4)],
    [receive {'DOWN', Ref, process, Pid, normal} -> ok end || {Pid, Ref} <- Callers],
    #{buffer_memory_bytes := Bytes, queue_depth := Depth, spooled := Spooled, dropped := Dropped} = stats(),
    report("~b events in memory, ~b spooled, ~b refused: ~b KiB of buffer", [Depth, Spooled, Dropped, Bytes div 1024]),
    ?assert(Spooled > 0 andalso Dropped > 0),
    %% Each event takes under 1 KiB; then the spare chunks and the one being cut.
    ?assert(Bytes =< Buffer * 1024 + 9 * 1024 * 1024).

publish_times(_Msg, 0) ->
    ok;
publish_times(Msg, N) ->
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(Msg, []),
    publish_times(Msg, N - 1).

%% Minor page faults of the VM's normal schedulers: field 10 of each one's stat.
scheduler_page_faults() ->
    lists:sum([Faults || {Name, Faults} <- erh_test_proc:threads(10), binary:match(Name, <<"_scheduler">>) =/= nomatch,
                         binary:match(Name, <<"dirty">>) =:= nomatch]).
