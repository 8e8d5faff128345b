%% make bench: one RabbitMQ (test/support/rabbitmq.sh; the presence section adds a Redis), the plugin in this node, and the sections
%% below run one after the other in the same run, so their ratios hold on a shared, noisy machine.
%% Each section is a module with run/1 returning tables (printed, then written as Markdown) and
%% data sets for the chart (erh_bench_report). A new measurement is one more module in sections/0.
%%
%% Also the helpers the sections share: the plugin started against the broker (up) or against a
%% port nobody listens on (down), EMQX-shaped hook arguments, callers in parallel, scheduler
%% utilisation and the node's resident memory.
-module(erh_bench).

-export([main/1]).
-export([start_plugin/3, stop_plugin/0, delete_queue/2, scaled/2]).
-export([client_info/1, conn_info/1, message/3]).
-export([in_parallel/2, sched_sample/0, sched_util/2, rss_bytes/0, cpu_seconds/1, rabbit_os_pid/1, timed/2]).
-export([wait_until/2, helper/2, helper_start/2, helper_stop/1, rate/2]).

-export_type([ctx/0, section/0, table/0]).

-include_lib("amqp_client/include/amqp_client.hrl").

-type ctx() :: #{rabbit := map(), dead_port := inet:port_number(), bin_dir := string(), scale := float()}.
-type table() :: #{title := string(), columns := [string()], rows := [[iodata() | number()]],
                   notes => [iodata()]}.
-type section() :: #{tables := [table()], data => #{atom() => [[number() | iodata()]]}}.

-callback run(ctx()) -> section().

%% The hook cost comes first: its first run measures memory the node never touched before.
sections() ->
    [erh_bench_hook, erh_bench_throughput, erh_bench_presence, erh_bench_memory].

%% main([BenchDir, BinDir]): results go to BenchDir/results; BinDir holds the C helpers
%% (raw_publish, raw_presence, event_size, json_cost).
main([BenchDir, BinDir]) ->
    %% The plugin logs every connection failure and every undelivered stop: the bench reads the
    %% counters instead.
    logger:set_primary_config(level, error),
    ok = io:setopts([{encoding, unicode}]),
    erlang:system_flag(scheduler_wall_time, true),
    io:format("starting a local RabbitMQ...~n"),
    Rabbit = erh_test_rabbit:start(),
    Ctx = #{rabbit => Rabbit, dead_port => erh_test_rabbit:free_port(), bin_dir => BinDir,
            scale => scale()},
    Status = try
                 Results = [run_section(Section, Ctx) || Section <- chosen(sections())],
                 write(BenchDir, Results),
                 0
             catch
                 Class:Reason:Stack ->
                     io:format("bench failed: ~p:~p~n~p~n", [Class, Reason, Stack]),
                     1
             after
                 erh_test_rabbit:stop(Rabbit)
             end,
    halt(Status).

run_section(Module, Ctx) ->
    io:format("~n== ~s~n", [Module]),
    Section = Module:run(Ctx),
    [erh_bench_report:print(Table) || Table <- maps:get(tables, Section)],
    Section.

%% ERH_BENCH_ONLY=erh_bench_throughput,erh_bench_presence runs only those sections, to try changes
%% quickly: their tables are printed, and bench/results keeps the last full run.
chosen(Sections) ->
    case os:getenv("ERH_BENCH_ONLY") of
        false -> Sections;
        Text -> [S || S <- Sections, lists:member(atom_to_list(S), string:lexemes(Text, ", "))]
    end.

write(BenchDir, Results) ->
    case os:getenv("ERH_BENCH_ONLY") of
        false -> erh_bench_report:write(BenchDir, Results);
        _ -> ok
    end.

%% ERH_BENCH_SCALE=0.1 runs every section on a tenth of its counts and time, to try changes quickly;
%% the figures in bench/results always come from the full run.
scale() ->
    case os:getenv("ERH_BENCH_SCALE") of
        false -> 1.0;
        Text -> float(list_to_number(Text))
    end.

list_to_number(Text) ->
    try list_to_float(Text) catch error:badarg -> list_to_integer(Text) end.

-spec scaled(ctx(), number()) -> pos_integer().
scaled(#{scale := Scale}, N) ->
    max(1, round(N * Scale)).

%%--------------------------------------------------------------------
%% The plugin
%%--------------------------------------------------------------------

%% Start the plugin with Overrides; up: against the bench's RabbitMQ, waiting until connected;
%% down: against a loopback port with no listener, which refuses connections as a stopped broker does.
-spec start_plugin(ctx(), up | down, [{atom(), term()}]) -> ok.
start_plugin(#{rabbit := Rabbit, dead_port := DeadPort}, Broker, Overrides) ->
    Server = case Broker of
                 up -> [];
                 down -> [{servers, ["127.0.0.1:" ++ integer_to_list(DeadPort)]}]
             end,
    {ok, _} = erh_test_rabbit:start_plugin(erh_test_rabbit:plugin_env(Rabbit, Overrides ++ Server)),
    case Broker of
        up -> wait_until(fun() -> lists:usort([S || #{state := S} <- connections()]) =:= [connected] end, 30000);
        down -> ok
    end.

connections() ->
    maps:get(connections, emqx_rabbitmq_hook:stats(), []).

stop_plugin() ->
    ok = erh_test_rabbit:stop_plugin().

delete_queue(Rabbit, Queue) ->
    erh_test_rabbit:with_channel(
      Rabbit, fun(Channel) -> #'queue.delete_ok'{} = amqp_channel:call(Channel, #'queue.delete'{queue = Queue}) end),
    ok.

%%--------------------------------------------------------------------
%% EMQX-shaped hook arguments (DESIGN §3, EMQX 5 shapes)
%%--------------------------------------------------------------------

client_info(ClientId) ->
    #{zone => default, protocol => mqtt, peerhost => {192, 168, 7, 21}, sockport => 1883,
      clientid => ClientId, username => <<"fleet-a">>, is_bridge => false, is_superuser => false,
      mountpoint => undefined, listener => 'tcp:default', enable_authn => true, client_attrs => #{}}.

conn_info(ClientId) ->
    #{socktype => tcp, peername => {{192, 168, 7, 21}, 52311}, sockname => {{10, 0, 0, 1}, 1883},
      peercert => nossl, conn_mod => emqx_connection, proto_name => <<"MQTT">>, proto_ver => 5,
      clean_start => true, clientid => ClientId, username => <<"fleet-a">>, conn_props => #{},
      connected => true, connected_at => erlang:system_time(millisecond), keepalive => 60,
      receive_maximum => 32, expiry_interval => 7200}.

%% #message{} of EMQX 5 with a UTF-8 payload of PayloadBytes and EMQX's 16-byte id from Seq.
message(ClientId, PayloadBytes, Seq) ->
    Payload = binary:copy(<<"7">>, PayloadBytes),
    {message, <<Seq:128>>, 1, ClientId, #{retain => false, dup => false},
     #{username => <<"fleet-a">>, peerhost => {192, 168, 7, 21}, proto_ver => 5},
     <<"devices/", ClientId/binary, "/telemetry">>, Payload, erlang:system_time(millisecond), #{}}.

%%--------------------------------------------------------------------
%% Measuring
%%--------------------------------------------------------------------

%% Run Fun(I) for I in 1..N, each in its own process, and wait for all; a crash fails the bench.
in_parallel(N, Fun) ->
    Monitors = [spawn_monitor(fun() -> Fun(I) end) || I <- lists:seq(1, N)],
    [receive {'DOWN', Ref, process, Pid, Why} -> normal = Why end || {Pid, Ref} <- Monitors],
    ok.

sched_sample() ->
    scheduler:sample().

%% Mean utilisation of the normal schedulers between two samples, in percent.
sched_util(S0, S1) ->
    Normal = [U || {normal, _Id, U, _} <- scheduler:utilization(S0, S1)],
    100 * lists:sum(Normal) / length(Normal).

%% Resident memory of this node, from the kernel (the NIF's events included).
rss_bytes() ->
    {ok, Status} = file:read_file("/proc/" ++ os:getpid() ++ "/status"),
    {match, [Kb]} = re:run(Status, <<"VmRSS:\\s+([0-9]+) kB">>, [{capture, all_but_first, binary}]),
    binary_to_integer(Kb) * 1024.

%% CPU time (user + system, all threads) an OS process has used so far, in seconds.
cpu_seconds(OsPid) ->
    [Utime, Stime] = erh_test_proc:stat(OsPid, [14, 15]),
    (Utime + Stime) / clock_ticks().

clock_ticks() ->
    list_to_integer(string:trim(os:cmd("getconf CLK_TCK"))).

%% Run Fun: its wall time, and the CPU time this node and the server (the OS process ServerPid, e.g.
%% RabbitMQ) spent meanwhile.
timed(ServerPid, Fun) ->
    Node = os:getpid(),
    {Node0, Server0} = {cpu_seconds(Node), cpu_seconds(ServerPid)},
    T0 = erlang:monotonic_time(microsecond),
    Fun(),
    Seconds = (erlang:monotonic_time(microsecond) - T0) / 1.0e6,
    #{seconds => Seconds, cpu => cpu_seconds(Node) - Node0, server_cpu => cpu_seconds(ServerPid) - Server0}.

%% The RabbitMQ node's OS process, from the pid file test/support/rabbitmq.sh gives it.
rabbit_os_pid(#{dir := Dir}) ->
    {ok, Pid} = file:read_file(filename:join(Dir, "rabbitmq.pid")),
    binary_to_list(string:trim(Pid)).

wait_until(Fun, TimeoutMs) ->
    true = erh_test_rabbit:wait_for(Fun, TimeoutMs, 2),
    ok.

%% Run one of the C helpers in BinDir and return its output's "key value" pairs as a map.
helper(#{bin_dir := BinDir}, [Name | Args]) ->
    Port = open_port({spawn_executable, filename:join(BinDir, Name)},
                     [{args, Args}, exit_status, binary, stderr_to_stdout]),
    {0, Output} = collect(Port, <<>>),
    Words = string:lexemes(binary_to_list(Output), " \n"),
    maps:from_list(pairs(Words)).

%% The same, left running: stopped with helper_stop/1.
-spec helper_start(ctx(), [string()]) -> port().
helper_start(#{bin_dir := BinDir}, [Name | Args]) ->
    open_port({spawn_executable, filename:join(BinDir, Name)}, [{args, Args}, exit_status, binary, stderr_to_stdout]).

helper_stop(Port) ->
    {os_pid, OsPid} = erlang:port_info(Port, os_pid),
    os:cmd("kill " ++ integer_to_list(OsPid)),
    {_Status, _Output} = collect(Port, <<>>),
    ok.

pairs([Key, Value | Rest]) -> [{Key, Value} | pairs(Rest)];
pairs([]) -> [].

collect(Port, Acc) ->
    receive
        {Port, {data, Data}} -> collect(Port, <<Acc/binary, Data/binary>>);
        {Port, {exit_status, Status}} -> {Status, Acc}
    end.

%% Events per second.
rate(Count, Seconds) when Seconds > 0 -> Count / Seconds.
