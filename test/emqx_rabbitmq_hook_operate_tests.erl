%% Running the plugin as an operator does, against a real RabbitMQ: the emqx_ctl command and
%% status(), the log lines (and never a password in them), configuration changes from EMQX 5, and
%% unloading and loading it 50 times while events flow (EMQX 4's unload/load, and EMQX 5's
%% stop/start, which also reloads the modules while the old code holds the NIF), with threads,
%% AMQP connections and memory staying flat and every accepted event arriving.
-module(emqx_rabbitmq_hook_operate_tests).

-include_lib("eunit/include/eunit.hrl").

-define(APP, emqx_rabbitmq_hook).
-define(CYCLES, 50).
%% Loose bounds for a shared, noisy machine: growth over the cycles, after warming up.
-define(ERLANG_MEMORY_SLACK, 8 * 1024 * 1024).
-define(RSS_SLACK, 24 * 1024 * 1024).

operate_test_() ->
    erh_test_fixture:each(fun erh_test_rabbit:start/0, fun erh_test_rabbit:stop/1, 300, tests(), fun run/2).

tests() ->
    [fun status_shows_each_publisher_and_the_queue_depth/1,
     fun ctl_command_is_registered_while_the_plugin_runs/1,
     fun logs_say_connected_and_lost_with_the_reason_and_never_a_password/1,
     fun config_change_from_emqx5_is_checked_then_applied/1,
     fun emqx4_unload_load_50_times_while_events_flow_leaks_nothing/1,
     fun emqx5_stop_start_with_module_reload_50_times_leaks_nothing/1].

run(Test, Rabbit) ->
    Unique = integer_to_binary(erlang:unique_integer([positive])),
    Ctx = #{rabbit => Rabbit, exchange => <<"op.ex.", Unique/binary>>, queue => <<"op.q.", Unique/binary>>},
    try Test(Ctx)
    after erh_test_rabbit:stop_plugin()
    end.

env(#{rabbit := Rabbit, exchange := Ex, queue := Q}, Overrides) ->
    erh_test_rabbit:plugin_env(Rabbit, [{exchange, Ex}, {queues, [{Q, ["#"]}]} | Overrides]).

start(Ctx, Overrides) ->
    {ok, _} = erh_test_rabbit:start_plugin(env(Ctx, Overrides)),
    ok.

message(Payload) ->
    {message, crypto:strong_rand_bytes(16), 1, <<"dev-op">>, #{retain => false}, #{username => <<"u">>},
     <<"op/t">>, Payload, erlang:system_time(millisecond)}.

publish(Payload) ->
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(message(Payload), []).

wait_confirmed(N) ->
    ?assert(erh_test_rabbit:wait_for(fun() -> maps:get(confirmed, emqx_rabbitmq_hook:stats(), 0) >= N end,
                                     20000, 20)).

%%--------------------------------------------------------------------
%% status() and the emqx_ctl command
%%--------------------------------------------------------------------

status_shows_each_publisher_and_the_queue_depth(Ctx) ->
    ?assertEqual(#{running => false}, emqx_rabbitmq_hook:status()),
    ?assertEqual(<<"emqx_rabbitmq_hook is not running\n">>, text(emqx_rabbitmq_hook_ctl:format(emqx_rabbitmq_hook:status()))),
    start(Ctx, [{publishers, 2}]),
    ?assert(erh_test_rabbit:wait_for(
              fun() -> [connected, connected] =:= [S || #{state := S} <- maps:get(connections, emqx_rabbitmq_hook:status())] end,
              20000, 20)),
    publish(<<"x">>),
    wait_confirmed(1),
    Status = emqx_rabbitmq_hook:status(),
    ?assertMatch(#{running := true, queue_depth := 0, connections := [#{server := _}, #{server := _}]}, Status),
    %% status() is the state; stats() has it and every counter.
    ?assertEqual(Status, maps:with(maps:keys(Status), emqx_rabbitmq_hook:stats())),
    ?assertNot(maps:is_key(confirmed, Status)),
    Server = iolist_to_binary(["127.0.0.1:", integer_to_list(erh_test_rabbit:port(maps:get(rabbit, Ctx)))]),
    StatusLines = lines(emqx_rabbitmq_hook_ctl:format(Status)),
    ?assertEqual(<<"emqx_rabbitmq_hook is running">>, hd(StatusLines)),
    [?assert(lists:member(Line, StatusLines))
     || Line <- [<<"publisher 0: state=connected server=", Server/binary, " queue_depth=0 spool_bytes=0 spool_events=0">>,
                 <<"publisher 1: state=connected server=", Server/binary, " queue_depth=0 spool_bytes=0 spool_events=0">>,
                 <<"queue_depth: 0">>]],
    %% One line per key (running is the first line, connections one per publisher).
    ?assertEqual(1 + map_size(Status) - 2 + 2, length(StatusLines)),
    %% Whatever counters stats() has are printed, one per line.
    Lines = lines(emqx_rabbitmq_hook_ctl:format(emqx_rabbitmq_hook:stats())),
    Counters = [K || {K, V} <- maps:to_list(emqx_rabbitmq_hook:stats()), is_integer(V)],
    [?assert(lists:member(iolist_to_binary([atom_to_list(K), ": ", integer_to_list(maps:get(K, emqx_rabbitmq_hook:stats()))]), Lines))
     || K <- Counters, K =/= seq],
    ?assertMatch([<<"emqx_rabbitmq_hook is running">> | _], Lines),
    %% Keys the NIF may add (spool, Redis) are shown by status too, whatever their shape.
    ?assertEqual(<<"emqx_rabbitmq_hook is running\nredis: state=connecting server=127.0.0.1:6379 db=0\n"
                   "spool_bytes: 12\n">>,
                 text(emqx_rabbitmq_hook_ctl:format(#{running => true, spool_bytes => 12,
                                                      redis => #{db => 0, server => <<"127.0.0.1:6379">>,
                                                                 state => connecting}}))).

text(IoData) ->
    unicode:characters_to_binary(IoData).

lines(IoData) ->
    binary:split(text(IoData), <<"\n">>, [global, trim]).

%% EMQX is not installable here, so a stand-in for emqx_ctl with EMQX's API (register_command/3,
%% unregister_command/1; a process named emqx_ctl holds the table) is loaded for this test only;
%% the command is then run the way emqx_ctl runs it, Mod:Fun(Args) and Mod:Fun(usage).
ctl_command_is_registered_while_the_plugin_runs(Ctx) ->
    ?assertEqual(ok, emqx_rabbitmq_hook_ctl:load()),  % no EMQX: nothing to register with, no error
    Table = start_emqx_ctl_stand_in(),
    try
        start(Ctx, []),
        {Mod, Fun} = registered_command(Table, rabbitmq_hook),
        Status = capture(fun() -> Mod:Fun(["status"]) end),
        ?assertMatch(<<"emqx_rabbitmq_hook is running\npublisher 0: state=", _/binary>>, Status),
        ?assertMatch(<<"emqx_rabbitmq_hook is running\n", _/binary>>, capture(fun() -> Mod:Fun(["stats"]) end)),
        Usage = capture(fun() -> Mod:Fun(usage) end),
        ?assertMatch({_, _}, binary:match(Usage, <<"rabbitmq_hook status">>)),
        ?assertMatch({_, _}, binary:match(Usage, <<"rabbitmq_hook stats">>)),
        ?assertEqual(Usage, capture(fun() -> Mod:Fun(["nonsense"]) end)),
        ok = erh_test_rabbit:stop_plugin(),
        ?assertEqual(none, registered_command(Table, rabbitmq_hook))
    after
        stop_emqx_ctl_stand_in(Table)
    end.

start_emqx_ctl_stand_in() ->
    Source = ["-module(emqx_ctl).",
              "-export([register_command/3, unregister_command/1]).",
              "register_command(Cmd, MF, Opts) when is_atom(Cmd) -> emqx_ctl ! {register, Cmd, MF, Opts}, ok.",
              "unregister_command(Cmd) when is_atom(Cmd) -> emqx_ctl ! {unregister, Cmd}, ok."],
    Forms = [begin {ok, Tokens, _} = erl_scan:string(Line), {ok, Form} = erl_parse:parse_form(Tokens), Form end
             || Line <- Source],
    {ok, emqx_ctl, Beam} = compile:forms(Forms),
    {module, emqx_ctl} = code:load_binary(emqx_ctl, "emqx_ctl.erl", Beam),
    Table = ets:new(emqx_ctl_stand_in, [public]),
    Pid = spawn(fun() -> register(emqx_ctl, self()), stand_in_loop(Table) end),
    ?assert(erh_test_rabbit:wait_for(fun() -> whereis(emqx_ctl) =:= Pid end, 1000, 5)),
    Table.

stand_in_loop(Table) ->
    receive
        {register, Cmd, MF, _Opts} -> ets:insert(Table, {Cmd, MF}), stand_in_loop(Table);
        {unregister, Cmd} -> ets:delete(Table, Cmd), stand_in_loop(Table);
        {sync, From} -> From ! synced, stand_in_loop(Table);
        stop -> ok
    end.

registered_command(Table, Cmd) ->
    emqx_ctl ! {sync, self()},
    receive synced -> ok end,
    case ets:lookup(Table, Cmd) of
        [{Cmd, MF}] -> MF;
        [] -> none
    end.

stop_emqx_ctl_stand_in(Table) ->
    emqx_ctl ! stop,
    ets:delete(Table),
    code:purge(emqx_ctl),
    code:delete(emqx_ctl),
    code:purge(emqx_ctl).

%% Run Fun with a group leader that keeps what it prints.
capture(Fun) ->
    Old = group_leader(),
    Collector = spawn_link(fun() -> collect(<<>>) end),
    group_leader(Collector, self()),
    try Fun()
    after group_leader(Old, self())
    end,
    Collector ! {text, self()},
    receive {text, Text} -> Text end.

collect(Acc) ->
    receive
        {io_request, From, ReplyAs, {put_chars, Encoding, M, F, A}} ->
            From ! {io_reply, ReplyAs, ok},
            collect(<<Acc/binary, (unicode:characters_to_binary(apply(M, F, A), Encoding))/binary>>);
        {io_request, From, ReplyAs, {put_chars, Encoding, Chars}} ->
            From ! {io_reply, ReplyAs, ok},
            collect(<<Acc/binary, (unicode:characters_to_binary(Chars, Encoding))/binary>>);
        {text, Pid} ->
            Pid ! {text, Acc}
    end.

%%--------------------------------------------------------------------
%% Logs
%%--------------------------------------------------------------------

logs_say_connected_and_lost_with_the_reason_and_never_a_password(Ctx = #{rabbit := Rabbit}) ->
    Secret = <<"pw-", (integer_to_binary(erlang:unique_integer([positive])))/binary>>,
    {_, Lines} = erh_test_logs:capture(
              fun() ->
                      %% A good login, then RabbitMQ closes the connection.
                      start(Ctx, [{vhost, "/"}]),
                      ?assert(erh_test_rabbit:wait_for(fun() -> connected(emqx_rabbitmq_hook:status()) end, 20000, 20)),
                      _ = erh_test_rabbit:ctl(Rabbit, ["close_all_connections", "maintenance"]),
                      ?assert(erh_test_rabbit:wait_for(fun() -> maps:get(reconnects, emqx_rabbitmq_hook:stats()) >= 1 end,
                                                       20000, 20)),
                      ok = erh_test_rabbit:stop_plugin(),
                      %% A refused login with the secret, a secret RabbitMQ never sees, and one
                      %% the plugin refuses before starting.
                      start(Ctx, [{password, Secret}]),
                      ?assert(erh_test_rabbit:wait_for(fun() -> maps:get(connect_failures, emqx_rabbitmq_hook:stats()) >= 1 end,
                                                       20000, 20)),
                      %% What sys:get_status/1 (and so a crash report) shows of the server and its supervisor.
                      States = io_lib:format("~p", [[sys:get_status(P) || P <- [emqx_rabbitmq_hook_server,
                                                                                emqx_rabbitmq_hook_sup]]]),
                      ?assertEqual(nomatch, string:find(States, binary_to_list(Secret))),
                      ok = erh_test_rabbit:stop_plugin(),
                      ?assertMatch({error, {?APP, {{password, hidden}, _}}},
                                   erh_test_rabbit:start_plugin(env(Ctx, [{password, <<Secret/binary, 0>>}]))),
                      ?assertMatch({error, _}, erh_test_rabbit:start_plugin(env(Ctx, [{password, Secret}, {confirm_window, -1}]))),
                      %% A full buffer and no spool: many drops, one warning.
                      start(Ctx, [{servers, ["127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port())]},
                                  {buffer_events, 10}, {spool_max_bytes, 0}]),
                      [publish(<<"x">>) || _ <- lists:seq(1, 1000)],
                      ?assertMatch(#{dropped := 990}, emqx_rabbitmq_hook:stats())
              end),
    All = iolist_to_binary(lists:join("\n", Lines)),
    ?assertEqual(nomatch, binary:match(All, Secret)),
    #{exchange := Ex} = Ctx,
    Port = integer_to_binary(erh_test_rabbit:port(Rabbit)),
    ?assert(has_line(Lines, [<<"publisher 0 connected to 127.0.0.1:", Port/binary>>, <<"vhost /">>, <<"exchange ", Ex/binary>>])),
    ?assert(has_line(Lines, [<<"publisher 0 lost its connection to 127.0.0.1:", Port/binary>>, <<"maintenance">>])),
    ?assert(has_line(Lines, [<<"publisher 0 cannot connect">>])),
    ?assert(has_line(Lines, [<<"invalid value for password">>])),
    ?assert(has_line(Lines, [<<"invalid value for confirm_window">>])),
    ?assertEqual(1, length([L || L <- Lines, binary:match(L, <<"event not accepted (overloaded)">>) =/= nomatch])).

connected(#{connections := Connections}) -> lists:all(fun(#{state := S}) -> S =:= connected end, Connections);
connected(_) -> false.

has_line(Lines, Parts) ->
    lists:any(fun(Line) -> lists:all(fun(Part) -> binary:match(Line, Part) =/= nomatch end, Parts) end, Lines).

%%--------------------------------------------------------------------
%% Configuration changes (EMQX >= 5.7 calls on_config_changed/2 on the app module)
%%--------------------------------------------------------------------

config_change_from_emqx5_is_checked_then_applied(Ctx = #{rabbit := Rabbit, queue := Q}) ->
    Port = integer_to_binary(erh_test_rabbit:port(Rabbit)),
    Q2 = <<Q/binary, ".changed">>,
    Spool = iolist_to_binary(filename:join(maps:get(dir, Rabbit), "spool-changed")),
    Changed = #{<<"servers">> => [<<"127.0.0.1:", Port/binary>>], <<"exchange">> => maps:get(exchange, Ctx),
                <<"spool">> => #{<<"dir">> => Spool},
                <<"queues">> => [#{<<"name">> => Q2, <<"bindings">> => [<<"#">>]}], <<"publishers">> => 2,
                <<"reconnect_min">> => <<"100ms">>},
    %% Not running: a valid change only sets the env the next start reads.
    ?assertEqual(ok, emqx_rabbitmq_hook_app:on_config_changed(#{}, Changed)),
    ?assertEqual({ok, 2}, application:get_env(?APP, publishers)),
    start(Ctx, []),
    publish(<<"before">>),
    wait_confirmed(1),
    {Handle, _} = emqx_rabbitmq_hook_server:handle(),
    %% Refused, naming the setting, and logged (EMQX 5.7 and 5.8 do not show it); the running
    %% plugin is left as it is.
    {Result, Lines} = erh_test_logs:capture(
                        fun() -> emqx_rabbitmq_hook_app:on_config_changed(#{}, Changed#{<<"heartbeat">> => <<"soon">>}) end),
    Why = <<"invalid value for heartbeat: <<\"soon\">> is not a duration with its unit such as 30s or 5m, or \"off\"">>,
    ?assertEqual({error, Why}, Result),
    ?assertMatch([_], [L || L <- Lines, binary:match(L, [<<"refused a configuration change">>]) =/= nomatch,
                            binary:match(L, Why) =/= nomatch]),
    {error, Refused} = emqx_rabbitmq_hook_app:on_config_changed(#{}, Changed#{<<"exchange_type">> => <<"headers">>}),
    ?assertMatch(<<"invalid value for exchange_type: ", _/binary>>, Refused),
    ?assertMatch({Handle, _}, emqx_rabbitmq_hook_server:handle()),
    %% Applied: the publishers start again with it.
    ?assertEqual(ok, emqx_rabbitmq_hook_app:on_config_changed(#{}, Changed)),
    ?assertNotMatch({Handle, _}, emqx_rabbitmq_hook_server:handle()),
    ?assertEqual(2, length(maps:get(connections, emqx_rabbitmq_hook:status()))),
    publish(<<"after">>),
    wait_confirmed(1),
    ?assertMatch([#{json := #{<<"payload">> := <<"before">>}}], erh_test_rabbit:fetch_json(Rabbit, Q, 1)),
    ?assertMatch([#{json := #{<<"payload">> := <<"after">>}}], erh_test_rabbit:fetch_json(Rabbit, Q2, 1)).

%%--------------------------------------------------------------------
%% Unload and load while events flow
%%--------------------------------------------------------------------

emqx4_unload_load_50_times_while_events_flow_leaks_nothing(Ctx) ->
    %% emqx_plugins:unload/1 and load/1 of EMQX 4.3/4.4: application stop, then start.
    cycles(Ctx, fun() -> ok = application:stop(?APP) end,
           fun(Env) -> {ok, _} = erh_test_rabbit:start_plugin(Env) end).

emqx5_stop_start_with_module_reload_50_times_leaks_nothing(Ctx) ->
    %% emqx_plugins:ensure_stopped/1 then ensure_started/1 of EMQX 5: stop the application,
    %% soft-purge its modules and unload it; then purge and load every module again (the old code
    %% still holds the NIF library: the NIF's upgrade callback runs), load and start.
    Modules = case application:get_key(?APP, modules) of
                  {ok, Ms} -> Ms;
                  undefined -> ok = application:load(?APP), {ok, Ms} = application:get_key(?APP, modules), Ms
              end,
    cycles(Ctx,
           fun() ->
                   ok = application:stop(?APP),
                   [code:soft_purge(M) || M <- Modules],
                   ok = application:unload(?APP)
           end,
           fun(Env) ->
                   [begin code:purge(M), {module, M} = code:load_file(M) end || M <- Modules],
                   %% The previous code is still there, holding the library: the load was an upgrade.
                   ?assert(erlang:check_old_code(emqx_rabbitmq_hook_nif)),
                   {ok, _} = erh_test_rabbit:start_plugin(Env)
           end).

cycles(Ctx = #{rabbit := Rabbit, queue := Q}, Unload, Load) ->
    Env = env(Ctx, [{publishers, 2}]),
    Producer = erh_test_emqx:producer(fun(N) -> publish(integer_to_binary(N)) end),
    Warmup = [cycle(Unload, Load, Env) || _ <- lists:seq(1, 3)],
    %% While loaded, RabbitMQ counts one connection per publisher.
    Running = cycle(Unload, fun(E) -> Load(E), ?assertEqual(2, running_connections(Rabbit)) end, Env),
    Before = footprint(Rabbit),
    Accepted = [cycle(Unload, Load, Env) || _ <- lists:seq(1, ?CYCLES)],
    Produced = erh_test_emqx:stop_producer(Producer),
    After = footprint(Rabbit),
    Total = lists:sum([Running | Warmup ++ Accepted]),
    ?debugFmt("~b cycles: ~b events produced, ~b accepted; threads ~b -> ~b, AMQP connections ~b -> ~b, "
              "erlang:memory(total) ~b -> ~b KB, RSS ~b -> ~b KB",
              [?CYCLES, Produced, Total, maps:get(threads, Before), maps:get(threads, After),
               maps:get(connections, Before), maps:get(connections, After),
               maps:get(erlang_memory, Before) div 1024, maps:get(erlang_memory, After) div 1024,
               maps:get(rss, Before) div 1024, maps:get(rss, After) div 1024]),
    ?assert(lists:all(fun(N) -> N > 0 end, Accepted)),
    ?assertEqual(maps:get(threads, Before), maps:get(threads, After)),
    ?assertEqual(0, maps:get(connections, After)),
    ?assert(maps:get(erlang_memory, After) - maps:get(erlang_memory, Before) < ?ERLANG_MEMORY_SLACK),
    ?assert(maps:get(rss, After) - maps:get(rss, Before) < ?RSS_SLACK),
    %% Every event a plugin instance accepted was confirmed before it stopped: all are in the queue.
    ?assert(erh_test_rabbit:wait_for(fun() -> erh_test_rabbit:queue_length(Rabbit, Q) >= Total end, 20000, 100)),
    ?assertEqual(Total, erh_test_rabbit:queue_length(Rabbit, Q)).

%% One unload/load: start, let events flow into this instance, stop; the events it accepted.
cycle(Unload, Load, Env) ->
    Load(Env),
    {Handle, _} = emqx_rabbitmq_hook_server:handle(),
    ?assert(erh_test_rabbit:wait_for(fun() -> maps:get(queued, emqx_rabbitmq_hook:stats()) >= 100 end, 10000, 5)),
    Unload(),
    %% The handle outlives the instance: its final counters. Every event it accepted was
    %% confirmed before it stopped.
    #{queued := Queued, undelivered := Undelivered} = emqx_rabbitmq_hook_nif:stats(Handle),
    ?assertEqual(0, Undelivered),
    Queued.

%% Threads of this OS process, AMQP connections as RabbitMQ counts them, memory; each read once
%% it has settled (threads and connections end when the plugin stops, a little after).
footprint(Rabbit) ->
    erlang:garbage_collect(),
    Threads = settled(fun() -> length(filelib:wildcard("/proc/self/task/*")) end),
    Connections = settled(fun() -> amqp_connections(Rabbit) end),
    #{threads => Threads, connections => Connections, erlang_memory => erlang:memory(total), rss => rss()}.

settled(Read) ->
    First = Read(),
    timer:sleep(200),
    case Read() of
        First -> First;
        _ -> settled(Read)
    end.

running_connections(Rabbit) ->
    ?assert(erh_test_rabbit:wait_for(fun() -> connected(emqx_rabbitmq_hook:status()) end, 20000, 10)),
    settled(fun() -> amqp_connections(Rabbit) end).

amqp_connections(Rabbit) ->
    Out = erh_test_rabbit:ctl(Rabbit, ["list_connections", "--silent", "name"]),
    length([L || L <- binary:split(Out, <<"\n">>, [global, trim_all]), L =/= <<>>]).

rss() ->
    {ok, Status} = file:read_file("/proc/self/status"),
    {match, [Kb]} = re:run(Status, <<"VmRSS:\\s+([0-9]+) kB">>, [{capture, all_but_first, binary}]),
    binary_to_integer(Kb) * 1024.
