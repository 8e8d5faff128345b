%% Owns the NIF instance: starts it, publishes its handle for the hook callbacks, logs what the
%% publisher threads report, and stops (drains) it when the plugin stops.
-module(emqx_rabbitmq_hook_server).

-behaviour(gen_server).

-export([start_link/1, handle/0]).
-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2, format_status/2]).

-include_lib("kernel/include/logger.hrl").

-define(KEY, emqx_rabbitmq_hook).
%% The same warning is logged again at most this often.
-define(REPEAT_LOG_MS, 60000).

%% Handle and counters the hook callbacks need; a persistent_term read costs no copy.
-spec handle() -> {reference(), counters:counters_ref()} | undefined.
handle() ->
    persistent_term:get(?KEY, undefined).

%% GetConfig returns the config map (a closure keeps the password out of supervisor reports).
start_link(GetConfig) ->
    gen_server:start_link({local, ?MODULE}, ?MODULE, GetConfig, []).

init(GetConfig) ->
    process_flag(trap_exit, true),
    Config = GetConfig(),
    case emqx_rabbitmq_hook_nif:start(Config) of
        {ok, Handle} ->
            Counters = emqx_rabbitmq_hook:new_counters(),
            persistent_term:put(?KEY, {Handle, Counters}),
            ?LOG_INFO("emqx_rabbitmq_hook started: ~b publisher(s) to ~ts, exchange ~ts",
                      [maps:get(publishers, Config), format_servers(Config), maps:get(exchange, Config)]),
            warn_unused_spools(Config),
            warn_unverified_tls(Config),
            {ok, #{handle => Handle, config => Config, logged => #{}}};
        {error, Error} ->
            ?LOG_ERROR("emqx_rabbitmq_hook not started: ~ts",
                       [emqx_rabbitmq_hook_config:format_error(Error)]),
            {stop, Error}
    end.

handle_call(_Request, _From, State) ->
    {reply, {error, unknown_call}, State}.

handle_cast(_Msg, State) ->
    {noreply, State}.

handle_info({emqx_rabbitmq_hook_nif, presence, Info}, State) ->
    {noreply, report_presence(Info, State)};
handle_info({emqx_rabbitmq_hook_nif, Index, Info}, State) ->
    {noreply, report(Index, Info, State)};
handle_info(_Info, State) ->
    {noreply, State}.

terminate(_Reason, #{handle := Handle, config := #{drain_timeout_ms := DrainMs}}) ->
    persistent_term:erase(?KEY),
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

%% Each publisher reads spool_dir/<index>: folders of publishers beyond the configured count hold
%% events nobody will send. Say so, with where they are.
warn_unused_spools(#{spool_dir := Dir, publishers := Publishers, spool_max_bytes := Max}) when Max > 0 ->
    Unused = [Sub || Sub <- filelib:wildcard(binary_to_list(Dir) ++ "/*"),
                     case string:to_integer(filename:basename(Sub)) of
                         {Index, ""} -> Index >= Publishers;
                         _ -> false
                     end,
                     filelib:wildcard(filename:join(Sub, "*.seg")) =/= []],
    [?LOG_WARNING("emqx_rabbitmq_hook: spool folder ~ts holds events but only ~b publisher(s) are "
                  "configured, so it is not read; raise publishers or move its files to send them",
                  [Sub, Publishers]) || Sub <- Unused],
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
