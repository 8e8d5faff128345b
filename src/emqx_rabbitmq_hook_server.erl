%% Owns the NIF instance: starts it with the configuration in the application env, publishes its
%% handle for the hook callbacks, logs what the publisher threads report, switches it to a new
%% configuration (reconfigure/1), and stops (drains) it when the plugin stops.
-module(emqx_rabbitmq_hook_server).

-behaviour(gen_server).

-export([start_link/0, handle/0, counters/0, forget_counters/0, reconfigure/2]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, format_status/2]).

-include_lib("kernel/include/logger.hrl").

-define(APP, emqx_rabbitmq_hook).
-define(KEY, emqx_rabbitmq_hook).
-define(COUNTERS_KEY, emqx_rabbitmq_hook_counters).
%% How long a switch lets the old instance drain when the new one takes over its spool.
-define(SWITCH_DRAIN_MS, 100).
%% The same warning is logged again at most this often.
-define(REPEAT_LOG_MS, 60000).

%% Handle and counters the hook callbacks need; a persistent_term read costs no copy.
-spec handle() -> {reference(), counters:counters_ref()} | undefined.
handle() ->
    persistent_term:get(?KEY, undefined).

%% The hook callbacks' counters. They outlive a restart of this server, so that hook calls finding
%% no instance while it restarts are counted too; the application forgets them once it has stopped.
-spec counters() -> counters:counters_ref() | undefined.
counters() ->
    persistent_term:get(?COUNTERS_KEY, undefined).

-spec forget_counters() -> ok.
forget_counters() ->
    _ = persistent_term:erase(?COUNTERS_KEY),
    ok.

%% The configuration is read from the application env at each start, so a restart after a crash
%% runs the configuration last applied, and the supervisor holds no password.
start_link() ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

%% Switch the running plugin to Config (checked already): the running instance drains, then one
%% with Config continues its boot (same boot id, seq and presence table: clients stay online in the
%% registry). Meanwhile the hooks stay registered; what they hand over finds the draining instance
%% and is counted as not_running. Once Config runs, Then() runs here too, so that two changes never
%% interleave what follows them. If Config cannot start, the previous configuration goes on, and
%% {error, {Key, Reason}} says why.
-spec reconfigure(map(), fun(() -> ok)) -> ok | {error, {atom(), term()}}.
reconfigure(Config, Then) ->
    %% In a closure: a crash report shows the last message, and Config holds the password.
    gen_server:call(?MODULE, {reconfigure, fun() -> Config end, Then}, infinity).

init([]) ->
    process_flag(trap_exit, true),
    case emqx_rabbitmq_hook_config:parse(application:get_all_env(?APP)) of
        {ok, Config} -> start(Config);
        {error, Error} -> not_started(Error)
    end.

start(Config) ->
    case emqx_rabbitmq_hook_nif:start(Config) of
        {ok, Handle} ->
            ?LOG_INFO("emqx_rabbitmq_hook started: ~ts", [describe(Config)]),
            {ok, running(Handle, Config, #{logged => #{}})};
        {error, Error} ->
            not_started(Error)
    end.

not_started(Error) ->
    ?LOG_ERROR("emqx_rabbitmq_hook not started: ~ts", [emqx_rabbitmq_hook_config:format_error(Error)]),
    {stop, emqx_rabbitmq_hook_config:redact(Error)}.

%% Hand the instance to the hook callbacks, with the counters (the same ones across a switch).
running(Handle, Config, State) ->
    persistent_term:put(?KEY, {Handle, ensure_counters()}),
    warn_unused_spools(Config),
    warn_unverified_tls(Config),
    State#{handle => Handle, config => Config}.

ensure_counters() ->
    case counters() of
        undefined ->
            Counters = emqx_rabbitmq_hook:new_counters(),
            persistent_term:put(?COUNTERS_KEY, Counters),
            Counters;
        Counters ->
            Counters
    end.

describe(Config) ->
    io_lib:format("~b publisher(s) to ~ts, exchange ~ts",
                  [maps:get(publishers, Config), format_servers(Config), maps:get(exchange, Config)]).

handle_call({reconfigure, GetConfig, Then}, _From, State) ->
    switch(GetConfig(), Then, State);
handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

%% The handle stays published while the old instance drains: hook calls get {error, closed} from it
%% (counted), and its presence thread still takes connects and disconnects. The new instance
%% continues the old one's boot, once that one's threads are joined.
switch(Config, Then, State = #{handle := Old, config := OldConfig}) ->
    drain(Old, switch_drain_ms(OldConfig, Config)),
    case emqx_rabbitmq_hook_nif:start(Config, Old) of
        {ok, Handle} ->
            ?LOG_INFO("emqx_rabbitmq_hook runs with its new configuration: ~ts", [describe(Config)]),
            Running = running(Handle, Config, State),
            {reply, Then(), Running};
        {error, Error} ->
            ?LOG_ERROR("emqx_rabbitmq_hook keeps its previous configuration, as the new one cannot start: ~ts",
                       [emqx_rabbitmq_hook_config:format_error(Error)]),
            revert(Old, OldConfig, Error, State)
    end.

%% A failed start takes nothing from Old: an instance with the previous configuration continues it.
revert(Old, OldConfig, Error, State) ->
    case emqx_rabbitmq_hook_nif:start(OldConfig, Old) of
        {ok, Handle} ->
            {reply, {error, Error}, running(Handle, OldConfig, State)};
        {error, Again} ->
            ?LOG_ERROR("emqx_rabbitmq_hook stopped: its previous configuration cannot start again: ~ts",
                       [emqx_rabbitmq_hook_config:format_error(Again)]),
            {stop, emqx_rabbitmq_hook_config:redact(Again), {error, Error}, State}
    end.

handle_cast(_Msg, State) ->
    {noreply, State}.

handle_info({emqx_rabbitmq_hook_nif, spool, Info}, State) ->
    report_spool(Info),
    {noreply, State};
handle_info({emqx_rabbitmq_hook_nif, presence, Info}, State) ->
    {noreply, report_presence(Info, State)};
handle_info({emqx_rabbitmq_hook_nif, Index, Info}, State) ->
    {noreply, report(Index, Info, State)};
handle_info(_Info, State) ->
    {noreply, State}.

terminate(_Reason, #{handle := Handle, config := #{drain_timeout_ms := DrainMs}}) ->
    persistent_term:erase(?KEY),
    drain(Handle, DrainMs).

%% Hook calls find the draining instance closed. When both configurations spool, what is not
%% confirmed after a short drain goes to the old spool, and the new instance takes it over (in other
%% folders or for other publishers, it moves it first: erh_spool_regroup.h) and sends it first, under
%% the same message ids: the gap is a moment, not drain_timeout (RabbitMQ slow or away). Otherwise
%% the old instance drains as on a stop.
switch_drain_ms(#{spool_max_bytes := Old, drain_timeout_ms := DrainMs}, #{spool_max_bytes := New})
  when Old > 0, New > 0 ->
    min(DrainMs, ?SWITCH_DRAIN_MS);
switch_drain_ms(#{drain_timeout_ms := DrainMs}, _) ->
    DrainMs.

%% Stop the instance: it refuses new events, waits up to DrainMs for RabbitMQ to confirm what is
%% queued and spools the rest. A second stop of the same instance does nothing.
drain(Handle, DrainMs) ->
    ok = emqx_rabbitmq_hook_nif:stop(Handle, DrainMs),
    case emqx_rabbitmq_hook_nif:stats(Handle) of
        #{undelivered := 0} ->
            ?LOG_INFO("emqx_rabbitmq_hook stopped: every accepted event was confirmed");
        #{undelivered := Left, spool_events := Kept} ->
            ?LOG_WARNING("emqx_rabbitmq_hook stopped with ~b event(s) not confirmed by RabbitMQ after ~b ms "
                         "of draining; ~b event(s) wait in the spool for the next start "
                         "(see the dropped counter for any that did not fit)", [Left, DrainMs, Kept])
    end.

%% Never show a secret in crash reports or sys:get_status/1.
format_status(_Opt, [_PDict, State = #{config := Config}]) ->
    State#{config := emqx_rabbitmq_hook_config:redact(Config)};
format_status(_Opt, [_PDict, State]) ->
    State.

report(Index, {connected, Server}, State = #{config := Config, logged := Logged}) ->
    ?LOG_INFO("emqx_rabbitmq_hook publisher ~b connected to ~ts (vhost ~ts, exchange ~ts)",
              [Index, Server, maps:get(vhost, Config), maps:get(exchange, Config)]),
    State#{logged := maps:filter(fun(Key, _) -> element(2, Key) =/= Index end, Logged)};
report(Index, {disconnected, Server, Why}, State) ->
    ?LOG_WARNING("emqx_rabbitmq_hook publisher ~b lost its connection to ~ts: ~ts; "
                 "unconfirmed events will be sent again", [Index, Server, Why]),
    State;
report(Index, {blocked, Server, Why}, State) ->
    ?LOG_WARNING("emqx_rabbitmq_hook publisher ~b: RabbitMQ at ~ts blocks publishing (~ts); events wait "
                 "in memory and in the spool until it unblocks", [Index, Server, Why]),
    State;
report(Index, {unblocked, Server}, State) ->
    ?LOG_INFO("emqx_rabbitmq_hook publisher ~b: RabbitMQ at ~ts no longer blocks publishing; "
              "what waited is sent now", [Index, Server]),
    State;
report(Index, {connect_failed, Server, Why}, State) ->
    throttle({connect_failed, Index, Why}, State,
             "emqx_rabbitmq_hook publisher ~b cannot connect to ~ts: ~ts; retrying",
             [Index, Server, Why]);
report(Index, {returned, RoutingKey, MessageId, Why}, State) ->
    throttle({returned, Index}, State,
             "emqx_rabbitmq_hook publisher ~b: RabbitMQ returned message ~ts: no queue is bound "
             "for routing key ~ts (~ts); see the returned counter for how many", [Index, MessageId, RoutingKey, Why]);
report(Index, {spool_failed, Why}, State) ->
    throttle({spool_failed, Index}, State,
             "emqx_rabbitmq_hook publisher ~b: disk spool error: ~ts; events stay in memory while they fit",
             [Index, Why]);
report(Index, {encode_failed, Event}, State) ->
    throttle({encode_failed, Index}, State,
             "emqx_rabbitmq_hook publisher ~b could not encode a ~ts event (out of memory); "
             "it is kept and tried again", [Index, Event]);
report(_Index, _Info, State) ->
    State.

%% What the presence thread says about its Redis connection and the updates Redis refused.
report_presence({connected, Server}, State = #{config := Config, logged := Logged}) ->
    ?LOG_INFO("emqx_rabbitmq_hook presence registry connected to Redis ~ts (db ~b, prefix ~ts)",
              [Server, maps:get(redis_db, Config), maps:get(redis_key_prefix, Config)]),
    State#{logged := maps:filter(fun(Key, _) -> element(1, Key) =/= presence end, Logged)};
report_presence({disconnected, Server, Why}, State) ->
    ?LOG_WARNING("emqx_rabbitmq_hook presence registry lost Redis ~ts: ~ts; updates wait in memory "
                 "and are applied once it is back", [Server, Why]),
    State;
report_presence({connect_failed, Server, Why}, State) ->
    throttle({presence, connect_failed, Why}, State,
             "emqx_rabbitmq_hook presence registry cannot connect to Redis ~ts: ~ts; retrying",
             [Server, Why]);
report_presence({lost_writes, Server}, State) ->
    ?LOG_WARNING("emqx_rabbitmq_hook presence registry: Redis ~ts lacks writes it had acknowledged (a "
                 "failover to a replica that was behind, or a restart from an older snapshot); this node "
                 "writes its clients again from memory", [Server]),
    State;
report_presence({redis_error, Why}, State) ->
    throttle({presence, redis_error}, State,
             "emqx_rabbitmq_hook presence registry: Redis refused an update: ~ts; it was skipped "
             "(see presence_errors)", [Why]);
report_presence(_Info, State) ->
    State.

%% Log a warning unless the same kind of warning was logged less than ?REPEAT_LOG_MS ago.
throttle(Key, State = #{logged := Logged}, Format, Args) ->
    Now = erlang:monotonic_time(millisecond),
    case maps:get(Key, Logged, undefined) of
        At when is_integer(At), Now - At < ?REPEAT_LOG_MS ->
            State;
        _ ->
            ?LOG_WARNING(Format, Args),
            State#{logged := Logged#{Key => Now}}
    end.

%% What a start's regroup of the spool did (erh_spool_regroup.h).
report_spool({regrouped, Events, Folders, Publishers, Cut, Ms}) ->
    ?LOG_NOTICE("emqx_rabbitmq_hook moved ~b spooled event(s) from ~b folder(s) to the spool folders of ~b "
                "publisher(s) in ~b ms, each client's in order~ts",
                [Events, Folders, Publishers, Ms,
                 [io_lib:format("; ~b torn or corrupt record(s) cut", [Cut]) || Cut > 0]]);
report_spool({regroup_failed, Why}) ->
    ?LOG_WARNING("emqx_rabbitmq_hook could not move its spooled events to the folders of its publishers: ~ts; "
                 "what did not move stays on disk (in the spool folder's regroup/, or in the previous spool "
                 "folder) and is moved by the next start that can, after newer events of the same clients",
                 [Why]).

%% With the spool on, the start moves every spooled event where its publisher reads it. With it off,
%% what earlier starts spooled stays on disk, unsent: say where.
warn_unused_spools(#{spool_dir := Dir, spool_max_bytes := 0}) ->
    Unused = [Sub || Pattern <- ["/*", "/regroup/*"], Sub <- filelib:wildcard(binary_to_list(Dir) ++ Pattern),
                     filelib:wildcard(filename:join(Sub, "*.seg")) =/= []],
    [?LOG_WARNING("emqx_rabbitmq_hook: spool folder ~ts holds events, but the spool is off "
                  "(spool_max_bytes = 0): they are sent once it is on again", [Sub]) || Sub <- Unused],
    ok;
warn_unused_spools(_Config) ->
    ok.

warn_unverified_tls(#{tls_enable := true, tls_verify := false}) ->
    ?LOG_WARNING("emqx_rabbitmq_hook: tls_verify is false: the connection is encrypted but the "
                 "server's certificate is not checked, so anyone on the path can pose as RabbitMQ");
warn_unverified_tls(_Config) ->
    ok.

format_servers(#{servers := Servers}) ->
    lists:join(", ", [[Host, $:, integer_to_binary(Port)] || {Host, Port} <- Servers]).
