%% Nothing lost: RabbitMQ outages in the middle of a stream, stops with events waiting, a full
%% spool, a torn spool file, a dead first server, a frozen broker and a broker that blocks
%% publishers (memory alarm), all against a real RabbitMQ.
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
     fun an_event_too_big_for_the_spool_does_not_keep_later_outages_from_spilling/1,
     fun a_torn_spool_file_delivers_every_whole_record/1,
     fun a_spool_record_damaged_after_it_was_written_is_counted_when_read/1,
     fun the_second_server_takes_over_when_the_first_is_down/1,
     fun a_silent_broker_is_noticed_by_heartbeats/1,
     fun unroutable_messages_are_kept_in_the_unroutable_queue/1,
     fun events_spooled_for_another_count_of_publishers_are_sent_in_client_order/1,
     fun a_spool_that_cannot_be_regrouped_does_not_stop_the_start/1,
     fun hook_calls_cost_the_same_with_rabbitmq_down/1,
     fun hook_calls_take_no_page_fault_while_the_buffer_grows/1,
     fun a_full_buffer_holds_the_memory_of_its_events_only/1,
     fun a_memory_alarm_blocks_publishing_and_events_wait_in_the_spool/1,
     fun publishing_resumes_on_the_same_connection_when_rabbitmq_unblocks/1,
     fun a_broker_that_stops_reading_is_given_up_after_the_stall_time/1].

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
    %% What was kept arrives in order. Mostly it is the oldest events, but not always: a hook call
    %% finding the memory queue full is refused at once, and when the publisher is late to move the
    %% queue to the spool (a busy machine), a later call may find room again.
    #{<<"bounded">> := Kept} = by_client(Unique),
    ?assertEqual(lists:usort(Kept), Kept).

%% One event larger than the whole spool waits in memory (and holds back the newer ones, to keep
%% their order) while RabbitMQ is away. Once it is sent, the spool takes events again: in the next
%% outage they are spilled, not left in memory.
an_event_too_big_for_the_spool_does_not_keep_later_outages_from_spilling(Ctx = #{rabbit := Rabbit}) ->
    ok = erh_test_rabbit:pause(Rabbit),
    start(Ctx, [{spool_max_bytes, 64 * 1024}]),
    Big = message(emqx4, <<"spill">>, <<"u">>, <<"t/spill">>, binary:copy(<<"x">>, 100 * 1024)),
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(Big, []),
    timer:sleep(500), %% five spill rounds
    ?assertMatch(#{queue_depth := 1, spool_events := 0}, stats()),
    ok = erh_test_rabbit:resume(Rabbit),
    wait_until(fun() -> maps:get(confirmed, stats()) =:= 1 end, 30000),
    ok = erh_test_rabbit:pause(Rabbit),
    wait_until(fun() -> connection_states() =:= [connecting] end, 20000),
    publish(<<"spill">>, 1, 20, 20, 0),
    Spilled = erh_test_rabbit:wait_for(fun() -> maps:get(spool_events, stats()) =:= 20 end, 5000, 50),
    #{spool_events := InSpool, queue_depth := InMemory} = stats(),
    ok = erh_test_rabbit:resume(Rabbit),
    report("after the event too big for the spool was sent, the next outage spilled ~b of 20 events (~b in memory)",
           [InSpool, InMemory]),
    ?assert(Spilled),
    wait_until(fun() -> maps:get(confirmed, stats()) =:= 21 end, 30000),
    ?assertEqual(#{<<"spill">> => lists:seq(1, 20)},
                 by_client([M || M = #{json := #{<<"payload">> := P}} <- drain_queue(Ctx), byte_size(P) < 100])).

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

%% A record damaged on disk after it was written (the open checked the spool when it was empty) is
%% found when it is read back: the rest of its segment is cut, counted in spool_corrupt, and every
%% record before it is delivered.
a_spool_record_damaged_after_it_was_written_is_counted_when_read(Ctx = #{rabbit := Rabbit, spool := Spool}) ->
    ok = erh_test_rabbit:pause(Rabbit),
    start(Ctx, []),
    publish(<<"damaged">>, 1, 1000, 1000, 0),
    wait_until(fun() -> maps:get(spool_events, stats()) =:= 1000 end, 20000),
    [Segment] = filelib:wildcard(filename:join([Spool, "0", "*.seg"])),
    {ok, File} = file:open(Segment, [read, write, binary]),
    Middle = filelib:file_size(Segment) div 2,
    {ok, <<Byte>>} = file:pread(File, Middle, 1),
    ok = file:pwrite(File, Middle, <<(Byte bxor 16#ff)>>),
    ok = file:close(File),
    ok = erh_test_rabbit:resume(Rabbit),
    wait_until(fun() -> maps:get(confirmed, stats()) > 0 andalso maps:get(spool_events, stats()) =:= 0 end, 60000),
    #{spool_corrupt := Cut, confirmed := Confirmed} = stats(),
    {Unique, _} = dedupe(drain_queue(Ctx)),
    report("a spooled record damaged in place: ~b records delivered, ~b cut", [length(Unique), Cut]),
    ?assertEqual(1, Cut),
    ?assert(Confirmed < 1000),
    ?assertEqual(#{<<"damaged">> => lists:seq(1, length(Unique))}, by_client(Unique)).

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

%% Events spooled by 4 publishers wait in 4 folders. With the spool off they stay there, named; with
%% 2 publishers they move to the folders of the 2, and each client's arrive once, in order.
events_spooled_for_another_count_of_publishers_are_sent_in_client_order(Ctx = #{rabbit := Rabbit, spool := Spool}) ->
    ok = erh_test_rabbit:pause(Rabbit),
    start(Ctx, [{publishers, 4}]),
    Clients = clients(10),
    [publish(C, 1, 20, 20, 0) || C <- Clients],
    wait_until(fun() -> maps:get(spool_events, stats()) =:= 200 end, 20000),
    erh_test_rabbit:stop_plugin(),
    Segments = fun(Folders) -> filelib:wildcard(Spool ++ "/{" ++ Folders ++ "}/*.seg") end,
    ?assertNotEqual([], Segments("2,3")),
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => self(), level => info}),
    try
        start(Ctx, [{publishers, 2}, {spool_max_bytes, 0}]),
        ?assert(lists:any(fun(Line) -> string:find(Line, Spool ++ "/3 holds events, but the spool is off") =/= nomatch end,
                          logged(1000))),
        erh_test_rabbit:stop_plugin(),
        ok = erh_test_rabbit:resume(Rabbit),
        start(Ctx, [{publishers, 2}]),
        ?assert(lists:any(fun(Line) -> string:find(Line, "moved 200 spooled event(s) from 4 folder(s)") =/= nomatch end,
                          logged(1000)))
    after
        logger:remove_handler(?MODULE)
    end,
    ?assertEqual([], Segments("2,3")),
    wait_until(fun() -> erh_test_rabbit:queue_length(Rabbit, maps:get(queue, Ctx)) >= 200 end, 30000),
    {Unique, Duplicates} = dedupe(drain_queue(Ctx)),
    ?assertEqual({200, 0}, {length(Unique), Duplicates}),
    ?assertEqual(maps:from_list([{C, lists:seq(1, 20)} || C <- Clients]), by_client(Unique)),
    ?assertMatch(#{replayed := 200, spool_events := 0}, stats()).

%% A staged folder whose segment cannot be opened (here a folder in its place): the start goes on,
%% says why, and events flow.
a_spool_that_cannot_be_regrouped_does_not_stop_the_start(Ctx = #{spool := Spool}) ->
    ok = filelib:ensure_path(filename:join([Spool, "regroup", "0", "00000000000000000001.seg"])),
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => self(), level => warning}),
    try
        start(Ctx, []),
        ?assert(lists:any(fun(Line) -> string:find(Line, "could not move its spooled events") =/= nomatch end,
                          logged(1000)))
    after
        logger:remove_handler(?MODULE)
    end,
    publish(<<"after">>, 1, 10, 10, 0),
    wait_until(fun all_confirmed/0, 10000),
    ?assertMatch({10, 0}, begin {U, D} = dedupe(drain_queue(Ctx)), {length(U), D} end).

log(#{msg := Msg}, #{config := Pid}) ->
    Text = case Msg of
               {string, String} -> String;
               {report, Report} -> io_lib:format("~0tp", [Report]);
               {Format, Args} -> io_lib:format(Format, Args)
           end,
    Pid ! {logged, lists:flatten(Text)},
    ok.

%% The lines logged (at the handler's level or above) within Ms.
logged(Ms) ->
    receive {logged, Line} -> [Line | logged(Ms)]
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

%%--------------------------------------------------------------------
%% RabbitMQ that stops reading
%%--------------------------------------------------------------------

%% Large events fill the socket's buffers long before the confirm window: a publisher that waited
%% for the socket would stop spilling, and stop/2 would wait for the broker.
-define(LARGE, 64 * 1024).
-define(LARGE_EVENTS, 400).
-define(DRAIN_MS, 1000).
%% What stop/2 may take beyond the drain: the grace for writing the spool and closing, and a loaded machine.
-define(STOP_MARGIN_MS, 3000).

%% RabbitMQ raises a memory alarm: it says connection.blocked and stops reading from publishers.
%% The publisher keeps its connection, publishes nothing more, spills to the spool as in an outage,
%% and a stop returns in time. Once the alarm clears, everything arrives, in order.
a_memory_alarm_blocks_publishing_and_events_wait_in_the_spool(Ctx = #{rabbit := Rabbit}) ->
    Overrides = [{buffer_events, 200}, {drain_timeout_ms, ?DRAIN_MS}],
    start(Ctx, Overrides),
    wait_until(fun() -> connection_states() =:= [connected] end, 20000),
    ok = logger:add_handler(?MODULE, ?MODULE, #{config => self(), level => warning}),
    try
        memory_alarm(Rabbit, on),
        publish_large(<<"alarm">>, 1, ?LARGE_EVENTS),
        wait_until(fun() -> connection_states() =:= [blocked] end, 20000),
        #{blocked := Blocked, dropped := Dropped, spooled := Spooled, confirmed := Confirmed} = stats(),
        Ms = timed_stop(),
        report("memory alarm: ~b of ~b large events confirmed before the block, ~b spooled, ~b dropped; "
               "stop took ~b ms with a ~b ms drain", [Confirmed, ?LARGE_EVENTS, Spooled, Dropped, Ms, ?DRAIN_MS]),
        ?assert(Blocked >= 1),
        ?assertEqual(0, Dropped),
        ?assert(Spooled > 0),
        ?assert(Ms < ?DRAIN_MS + ?STOP_MARGIN_MS),
        ?assert(lists:any(fun(Line) -> string:find(Line, "blocks publishing") =/= nomatch end, logged(0)))
    after
        logger:remove_handler(?MODULE),
        memory_alarm(Rabbit, off)
    end,
    every_large_event_arrives_after_a_restart(Ctx, <<"alarm">>, Overrides).

%% A block longer than two heartbeat intervals: RabbitMQ still sends its heartbeats and the
%% publisher still reads them, so the connection stays; it publishes again on connection.unblocked.
publishing_resumes_on_the_same_connection_when_rabbitmq_unblocks(Ctx = #{rabbit := Rabbit}) ->
    start(Ctx, [{heartbeat, 1}, {buffer_events, 200}]),
    wait_until(fun() -> connection_states() =:= [connected] end, 20000),
    try
        memory_alarm(Rabbit, on),
        publish_large(<<"unblocked">>, 1, ?LARGE_EVENTS),
        wait_until(fun() -> connection_states() =:= [blocked] end, 20000),
        timer:sleep(4000),
        ?assertEqual([blocked], connection_states())
    after
        memory_alarm(Rabbit, off)
    end,
    wait_until(fun() -> maps:get(confirmed, stats()) >= ?LARGE_EVENTS end, 60000),
    #{blocked := Blocked, reconnects := Reconnects, dropped := Dropped, spooled := Spooled} = stats(),
    {Unique, Duplicates} = dedupe(drain_queue(Ctx)),
    report("blocked for 4 s with a 1 s heartbeat: ~b reconnects, ~b spooled, ~b unique, ~b duplicates",
           [Reconnects, Spooled, length(Unique), Duplicates]),
    ?assertEqual([connected], connection_states()),
    ?assertEqual({1, 0, 0}, {Blocked, Reconnects, Dropped}),
    ?assertEqual([{<<"unblocked">>, lists:seq(1, ?LARGE_EVENTS)}], large_numbers(Unique)).

%% RabbitMQ frozen with heartbeats off: it stops reading without a word. The socket's buffers fill,
%% the publisher keeps spilling instead of waiting in a write, gives the connection up once it has
%% taken nothing for the stall time (connect_timeout_ms here), and a stop returns in time.
a_broker_that_stops_reading_is_given_up_after_the_stall_time(Ctx = #{rabbit := Rabbit}) ->
    Overrides = [{heartbeat, 0}, {connect_timeout_ms, 1000}, {buffer_events, 200}, {drain_timeout_ms, ?DRAIN_MS}],
    start(Ctx, Overrides),
    wait_until(fun() -> connection_states() =:= [connected] end, 20000),
    ok = erh_test_rabbit:freeze(Rabbit),
    try
        publish_large(<<"frozen">>, 1, ?LARGE_EVENTS),
        wait_until(fun() -> connection_states() =:= [connecting] end, 20000),
        #{dropped := Dropped, spooled := Spooled, reconnects := 0} = stats(),
        Ms = timed_stop(),
        report("frozen broker, heartbeats off: ~b large events spooled, ~b dropped; stop took ~b ms with a ~b ms drain",
               [Spooled, Dropped, Ms, ?DRAIN_MS]),
        ?assertEqual(0, Dropped),
        ?assert(Spooled > 0),
        ?assert(Ms < ?DRAIN_MS + ?STOP_MARGIN_MS)
    after
        ok = erh_test_rabbit:thaw(Rabbit)
    end,
    every_large_event_arrives_after_a_restart(Ctx, <<"frozen">>, Overrides).

%% The next start sends what the spool kept: every event arrives, in order; duplicates are only
%% events that RabbitMQ read from the old connection after the stop had kept them in the spool.
every_large_event_arrives_after_a_restart(Ctx = #{rabbit := Rabbit, queue := Q}, Client, Overrides) ->
    start(Ctx, Overrides),
    wait_until(fun() ->
                       #{spool_events := Left, queue_depth := Depth} = stats(),
                       Left + Depth =:= 0 andalso erh_test_rabbit:queue_length(Rabbit, Q) >= ?LARGE_EVENTS
               end, 60000),
    {Unique, Duplicates} = dedupe(drain_queue(Ctx)),
    report("after the restart: ~b unique, ~b duplicates", [length(Unique), Duplicates]),
    ?assertEqual(0, maps:get(dropped, stats())),
    ?assertEqual([{Client, lists:seq(1, ?LARGE_EVENTS)}], large_numbers(Unique)).

%% Events First..Last of Client, each ?LARGE bytes of payload starting with its number; a pause
%% now and then, as the spool writes at the disk's pace.
publish_large(Client, First, Last) ->
    Pad = binary:copy(<<"x">>, ?LARGE),
    [begin
         Payload = <<(integer_to_binary(I))/binary, ":", Pad/binary>>,
         {ok, _} = emqx_rabbitmq_hook:on_message_publish(
                     message(emqx4, Client, <<"u">>, <<"t/", Client/binary>>, binary:part(Payload, 0, ?LARGE)), []),
         I rem 10 =:= 0 andalso timer:sleep(20)
     end || I <- lists:seq(First, Last)],
    ok.

%% [{Client, the numbers of its large events in arrival order}]
large_numbers(Messages) ->
    [{Client, [Number || #{json := #{<<"from_client_id">> := C, <<"payload">> := Payload}} <- Messages, C =:= Client,
                         [Text, _] <- [binary:split(Payload, <<":">>)], Number <- [binary_to_integer(Text)]]}
     || Client <- lists:usort([C || #{json := #{<<"from_client_id">> := C}} <- Messages])].

connection_states() ->
    [State || #{state := State} <- maps:get(connections, stats())].

%% Stop the plugin; how long it took, in ms.
timed_stop() ->
    T0 = erlang:monotonic_time(millisecond),
    erh_test_rabbit:stop_plugin(),
    erlang:monotonic_time(millisecond) - T0.

%% RabbitMQ's memory alarm: a limit of one byte raises it at once, the default clears it.
memory_alarm(Rabbit, on) ->
    erh_test_rabbit:ctl(Rabbit, ["set_vm_memory_high_watermark", "absolute", "1"]);
memory_alarm(Rabbit, off) ->
    erh_test_rabbit:ctl(Rabbit, ["set_vm_memory_high_watermark", "0.4"]).

%% Minor page faults of the VM's normal schedulers: field 10 of each one's stat.
scheduler_page_faults() ->
    lists:sum([Faults || {Name, Faults} <- erh_test_proc:threads(10), binary:match(Name, <<"_scheduler">>) =/= nomatch,
                         binary:match(Name, <<"dirty">>) =:= nomatch]).
