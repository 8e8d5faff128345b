%% Memory: RabbitMQ down and events arriving at full rate for a minute. The buffer fills to
%% buffer_events and every further event goes to the disk spool or, once that is full too (or when
%% the plugin has none), is counted as dropped, so the node's resident memory must
%% stay within buffer_events times the size of one buffered event (measured by bench/event_size.c
%% from the NIF's own code) plus a fixed overhead. Run in a fresh peer node, so memory that other
%% sections made the allocator keep does not hide what this one needs.
-module(erh_bench_memory).

-behaviour(erh_bench).

-export([run/1, measure/2]).

-define(SECONDS, 60).
-define(CALLERS, 4).
-define(PAYLOAD, 200).
%% Threads' stacks and allocator arenas, the callers' heaps: what the node needs besides the events.
-define(OVERHEAD_MIB, 32).
-define(MIB, 1048576).

run(Ctx) ->
    Seconds = erh_bench:scaled(Ctx, ?SECONDS),
    Buffer = proplists:get_value(buffer_events, emqx_rabbitmq_hook_config:defaults()),
    ClientId = <<"bench-1">>,
    {_, _, _, _, _, Headers, Topic, _, _, _} = erh_bench:message(ClientId, ?PAYLOAD, 0),
    #{"bytes" := EventBytes} =
        erh_bench:helper(Ctx, ["event_size" | [integer_to_list(byte_size(B))
                                               || B <- [ClientId, maps:get(username, Headers), Topic,
                                                        binary:copy(<<"7">>, ?PAYLOAD)]]]),
    Bound = Buffer * list_to_integer(EventBytes),
    {ok, Peer, _} = peer:start_link(#{connection => standard_io, args => code_path_args()}),
    Result = try peer:call(Peer, ?MODULE, measure, [Ctx, Seconds], (Seconds + 60) * 1000)
             after peer:stop(Peer)
             end,
    #{alone := Alone, samples := Samples, stats := Stats} = Result,
    Peak = lists:max([Rss || {_, Rss} <- Samples]),
    Limit = Alone + Bound + ?OVERHEAD_MIB * ?MIB,
    #{tables => [#{title => "Memory while RabbitMQ is down (events at full rate)",
                   columns => ["seconds", "events offered", "buffered", "spooled", "dropped", "node alone MiB",
                               "peak RSS MiB", "growth MiB", "bound MiB",
                               "growth ≤ bound + " ++ integer_to_list(?OVERHEAD_MIB) ++ " MiB"],
                   rows => [[Seconds, maps:get(received, Stats), maps:get(queue_depth, Stats),
                             maps:get(spooled, Stats, 0), maps:get(dropped, Stats), mib(Alone), mib(Peak), mib(Peak - Alone), mib(Bound),
                             yes_no(Peak =< Limit)]],
                   notes => [io_lib:format("Bound: buffer_events (~b, the default) × ~s bytes per buffered "
                                           "~b-byte publish event (the NIF's record as its arena cuts it). "
                                           "Node alone: the fresh node before the plugin starts; growth: peak "
                                           "RSS over the run minus that. ~b processes call on_message_publish "
                                           "without pause.", [Buffer, EventBytes, ?PAYLOAD, ?CALLERS])]}],
      data => #{memory => [[T, mib(Rss), mib(Alone + Bound), mib(Limit)] || {T, Rss} <- Samples]}}.

%% The code path of this node without OTP's own directories, for the peer.
code_path_args() ->
    Root = code:root_dir(),
    lists:append([["-pa", Dir] || Dir <- code:get_path(), not lists:prefix(Root, Dir), Dir =/= "."]).

%% In the peer: the plugin against a closed port, ?CALLERS processes publishing until the time is
%% up, and the node's RSS sampled every second.
measure(Ctx, Seconds) ->
    logger:set_primary_config(level, error),
    Alone = erh_bench:rss_bytes(),
    ok = erh_bench:start_plugin(Ctx, down, [{drain_timeout_ms, 0}]),
    Stop = atomics:new(1, []),
    Callers = [spawn_monitor(fun() -> publish(I, Stop) end) || I <- lists:seq(1, ?CALLERS)],
    Samples = [begin timer:sleep(1000), {T, erh_bench:rss_bytes()} end || T <- lists:seq(1, Seconds)],
    atomics:put(Stop, 1, 1),
    [receive {'DOWN', Ref, process, Pid, normal} -> ok end || {Pid, Ref} <- Callers],
    Stats = emqx_rabbitmq_hook:stats(),
    erh_bench:stop_plugin(),
    #{alone => Alone, samples => [{0, Alone} | Samples], stats => Stats}.

publish(I, Stop) ->
    Message = erh_bench:message(<<"bench-", (integer_to_binary(I))/binary>>, ?PAYLOAD, 0),
    publish(Message, 1, Stop).

publish(Message, Seq, Stop) ->
    case Seq rem 1024 =:= 0 andalso atomics:get(Stop, 1) =:= 1 of
        true -> ok;
        false ->
            emqx_rabbitmq_hook:on_message_publish(setelement(2, Message, <<Seq:128>>), []),
            publish(Message, Seq + 1, Stop)
    end.

mib(Bytes) -> Bytes / ?MIB.

yes_no(true) -> "yes";
yes_no(false) -> "no".
