%% The EMQX hook callbacks. Each turns EMQX's terms into one flat tuple and hands it to the NIF:
%% no I/O, no waiting, never a crash. What cannot be read is counted as malformed; what the NIF
%% cannot take (queue full) is counted there; what finds no running instance (while the plugin
%% switches to a new configuration, or its server restarts) is counted as not_running; each is
%% logged at most every few seconds.
-module(emqx_rabbitmq_hook).

-emqx_plugin(?MODULE).

-export([load/1, unload/0, hooked_events/1, stats/0, status/0, broker/0, presence/1, presence/2]).
-export([on_client_connected/3, on_client_disconnected/4, on_message_publish/2]).
-export([connected_event/3, disconnected_event/4]).
-export([new_counters/0]).

-include_lib("kernel/include/logger.hrl").

-define(HOOKS_KEY, emqx_rabbitmq_hook_hooks).
%% EMQX 5 hook priority: the same as EMQX's own data bridges.
-define(PRIORITY, 870).
-define(LOG_EVERY_S, 10).

%% counters index: events the hooks could not read; atomics index: last warning second
-define(C_MALFORMED, 1).
-define(C_OVERLOADED_LOGGED_AT, 2).
-define(C_MALFORMED_LOGGED_AT, 3).
-define(C_NOT_RUNNING, 4).
-define(C_NOT_RUNNING_LOGGED_AT, 5).

%%--------------------------------------------------------------------
%% Registration
%%--------------------------------------------------------------------

%% Register the callbacks of the enabled events with the running broker. Env is the plugin's
%% application env; the callbacks do not need it (they find the NIF handle themselves).
-spec load(list()) -> ok.
load(Env) ->
    {ok, Config} = emqx_rabbitmq_hook_config:parse(Env),
    Events = hooked_events(Config),
    Hooks = [Hook || Hook = {Event, _, _} <- hooks(), lists:member(Event, Events)],
    Registered = case broker() of
                     none ->
                         ?LOG_NOTICE("emqx_rabbitmq_hook: EMQX is not running in this node; "
                                     "no hooks registered (the callbacks can be called directly)"),
                         [];
                     Broker ->
                         [register_hook(Broker, Point, Fun) || {_, Point, Fun} <- Hooks]
                 end,
    persistent_term:put(?HOOKS_KEY, Registered),
    ok.

%% Remove exactly the hooks load/1 registered.
-spec unload() -> ok.
unload() ->
    lists:foreach(fun unregister_hook/1, persistent_term:get(?HOOKS_KEY, [])),
    persistent_term:erase(?HOOKS_KEY),
    ok.

%% The events whose hooks load/1 registers: those sent to RabbitMQ, and with presence on the
%% connects and disconnects the registry needs whatever `events` says.
-spec hooked_events(emqx_rabbitmq_hook_config:config()) -> [atom()].
hooked_events(#{events := Events, presence := true}) ->
    lists:usort(Events ++ [client_connected, client_disconnected]);
hooked_events(#{events := Events}) ->
    Events.

hooks() ->
    [{client_connected, 'client.connected', on_client_connected},
     {client_disconnected, 'client.disconnected', on_client_disconnected},
     {message_publish, 'message.publish', on_message_publish}].

%% EMQX 5 registers with a priority through emqx_hooks:add/3, and so do the releases after it;
%% EMQX 4 through emqx:hook/2.
-spec broker() -> emqx5 | emqx4 | none.
broker() ->
    case application:get_key(emqx, vsn) of
        {ok, Vsn} ->
            case string:to_integer(Vsn) of
                {Major, _} when is_integer(Major), Major >= 5 -> emqx5;
                _ -> emqx4
            end;
        undefined ->
            none
    end.

register_hook(emqx5, Point, Fun) ->
    ok = emqx_hooks:add(Point, {?MODULE, Fun, [[]]}, ?PRIORITY),
    {emqx5, Point, Fun};
register_hook(emqx4, Point, Fun) ->
    ok = emqx:hook(Point, {?MODULE, Fun, [[]]}),
    {emqx4, Point, Fun}.

unregister_hook({emqx5, Point, Fun}) -> emqx_hooks:del(Point, {?MODULE, Fun});
unregister_hook({emqx4, Point, Fun}) -> emqx:unhook(Point, {?MODULE, Fun}).

%%--------------------------------------------------------------------
%% Statistics
%%--------------------------------------------------------------------

-spec stats() -> map().
stats() ->
    case emqx_rabbitmq_hook_server:handle() of
        {Handle, Counters} ->
            (emqx_rabbitmq_hook_nif:stats(Handle))#{malformed => counters:get(Counters, ?C_MALFORMED),
                                                   not_running => counters:get(Counters, ?C_NOT_RUNNING),
                                                   running => true};
        undefined ->
            #{running => false}
    end.

%% What `emqx_ctl rabbitmq_hook status` shows: whether the plugin runs, each publisher's connection
%% (state, server, queue depth), the total queue depth, and whatever the NIF reports about the
%% spool, Redis and the presence registry (keys starting with spool, redis or presence).
-spec status() -> map().
status() ->
    maps:filter(fun(Key, _) -> is_status(atom_to_list(Key)) end, stats()).

is_status(Key) ->
    lists:member(Key, ["running", "connections", "queue_depth"])
        orelse lists:any(fun(Prefix) -> lists:prefix(Prefix, Key) end, ["spool", "redis", "presence"]).

new_counters() ->
    counters:new(5, [write_concurrency]).

%%--------------------------------------------------------------------
%% Presence
%%--------------------------------------------------------------------

-type presence() :: #{online := boolean(), node => binary(), conn_id => binary(),
                      connected_at => integer(), ipaddress => binary(), username => binary(),
                      last_disconnected_at => integer()}.

%% Is the client online, on which node, since when? Asks Redis with priv/presence_read.lua (one
%% round trip, on a dirty I/O scheduler). When online is false, node, conn_id and connected_at
%% describe the client's last connection, if the registry knows one.
-spec presence(binary()) -> presence() | {error, not_running | disabled | {redis, binary()}}.
presence(ClientId) ->
    case emqx_rabbitmq_hook_server:handle() of
        {Handle, _} -> presence(Handle, ClientId);
        undefined -> {error, not_running}
    end.

%% The same through a given NIF handle.
-spec presence(reference(), binary()) -> presence() | {error, disabled | {redis, binary()}}.
presence(Handle, ClientId) when is_binary(ClientId) ->
    case emqx_rabbitmq_hook_nif:presence(Handle, ClientId) of
        {ok, Pairs} -> maps:from_list(lists:filtermap(fun presence_field/1, Pairs));
        {error, _} = Error -> Error
    end.

%% The fields priv/presence_read.lua returns; any other is ignored (no atoms are made from Redis data).
presence_field({<<"online">>, Value}) -> {true, {online, Value =:= <<"1">>}};
presence_field({<<"node">>, Value}) -> {true, {node, Value}};
presence_field({<<"conn_id">>, Value}) -> {true, {conn_id, Value}};
presence_field({<<"connected_at">>, Value}) -> {true, {connected_at, binary_to_integer(Value)}};
presence_field({<<"ipaddress">>, Value}) -> {true, {ipaddress, Value}};
presence_field({<<"username">>, Value}) -> {true, {username, Value}};
presence_field({<<"last_disconnected_at">>, Value}) -> {true, {last_disconnected_at, binary_to_integer(Value)}};
presence_field(_) -> false.

%%--------------------------------------------------------------------
%% Callbacks
%%--------------------------------------------------------------------

on_client_connected(ClientInfo, ConnInfo, _Env) ->
    submit(fun() -> connected_event(ClientInfo, ConnInfo, self()) end).

on_client_disconnected(ClientInfo, Reason, ConnInfo, _Env) ->
    submit(fun() -> disconnected_event(ClientInfo, Reason, ConnInfo, self()) end).

%% The flat tuples the NIF takes. Pid is the channel process (the hooks run in it), which names
%% the connection on its node; the NIF writes it out as pid_to_list/1 does.
connected_event(ClientInfo, ConnInfo, Pid) ->
    {connected,
     clientid(ClientInfo, ConnInfo),
     username(ClientInfo, ConnInfo),
     peerhost(ClientInfo, ConnInfo),
     peerport(ConnInfo),
     maps:get(keepalive, ConnInfo, 0),
     text(maps:get(proto_name, ConnInfo, <<"MQTT">>)),
     proto_ver(maps:get(proto_ver, ConnInfo, 4)),
     maps:get(clean_start, ConnInfo, true),
     maps:get(connected_at, ConnInfo, now_ms()),
     Pid}.

disconnected_event(ClientInfo, Reason, ConnInfo, Pid) ->
    {disconnected,
     clientid(ClientInfo, ConnInfo),
     username(ClientInfo, ConnInfo),
     peerhost(ClientInfo, ConnInfo),
     reason(Reason),
     maps:get(connected_at, ConnInfo, 0),
     maps:get(disconnected_at, ConnInfo, now_ms()),
     Pid}.

%% #message{id, qos, from, flags, headers, topic, payload, timestamp} in EMQX 4, with `extra`
%% appended in EMQX 5: read by position so one build serves both.
on_message_publish(Message, _Env) ->
    submit(fun() ->
                   message = element(1, Message),
                   Flags = element(5, Message),
                   Headers = element(6, Message),
                   {publish,
                    element(2, Message),
                    optional_text(element(4, Message)),
                    optional_text(maps:get(username, Headers, undefined)),
                    element(7, Message),
                    iolist_to_binary(element(8, Message)),
                    element(3, Message),
                    maps:get(retain, Flags, false),
                    element(9, Message)}
           end),
    {ok, Message}.

%% Build the event and submit it; never raise, never block.
submit(Build) ->
    case emqx_rabbitmq_hook_server:handle() of
        undefined ->
            not_running(emqx_rabbitmq_hook_server:counters());
        {Handle, Counters} ->
            try emqx_rabbitmq_hook_nif:submit(Handle, Build()) of
                ok -> ok;
                {error, closed} -> not_running(Counters);
                {error, Why} -> warn(Counters, ?C_OVERLOADED_LOGGED_AT, Why)
            catch
                _:_ ->
                    counters:add(Counters, ?C_MALFORMED, 1),
                    warn(Counters, ?C_MALFORMED_LOGGED_AT, malformed)
            end
    end.

%% No instance took the event: it is being stopped (a configuration change) or not started yet (a
%% restart of the server). Without counters the plugin has stopped: its hooks are going.
not_running(undefined) ->
    ok;
not_running(Counters) ->
    counters:add(Counters, ?C_NOT_RUNNING, 1),
    warn(Counters, ?C_NOT_RUNNING_LOGGED_AT, not_running).

%% A slot holds the monotonic second of the last warning, 0 for none yet (monotonic time is
%% often negative, so "long after 0" would not mean "never").
warn(Counters, Slot, Why) ->
    Now = erlang:monotonic_time(second),
    Last = counters:get(Counters, Slot),
    case Last =:= 0 orelse Now - Last >= ?LOG_EVERY_S of
        true ->
            counters:put(Counters, Slot, Now),
            ?LOG_WARNING("emqx_rabbitmq_hook: event not accepted (~p); `emqx_ctl rabbitmq_hook stats` "
                         "says how many (dropped, malformed, not_running)", [Why]);
        false ->
            ok
    end.

%%--------------------------------------------------------------------
%% Reading EMQX terms
%%--------------------------------------------------------------------

%% EMQX client ids are binaries; anything else is a malformed event (the caller counts it).
clientid(ClientInfo, ConnInfo) ->
    case maps:get(clientid, ClientInfo, maps:get(clientid, ConnInfo, undefined)) of
        ClientId when is_binary(ClientId) -> ClientId
    end.

username(ClientInfo, ConnInfo) ->
    optional_text(maps:get(username, ClientInfo, maps:get(username, ConnInfo, undefined))).

peerhost(#{peerhost := Host}, _ConnInfo) -> Host;
peerhost(_ClientInfo, #{peername := {Host, _}}) -> Host;
peerhost(_ClientInfo, _ConnInfo) -> undefined.

peerport(#{peername := {_, Port}}) -> Port;
peerport(_ConnInfo) -> 0.

now_ms() ->
    erlang:system_time(millisecond).

%% Reasons are atoms, {shutdown, Atom} or any term: a short, readable string for each.
reason(Reason) when is_atom(Reason) -> atom_to_binary(Reason, utf8);
reason({shutdown, Reason}) when is_atom(Reason) -> atom_to_binary(Reason, utf8);
reason(Reason) when is_binary(Reason) -> Reason;
reason(Reason) -> unicode:characters_to_binary(io_lib:format("~0P", [Reason, 6])).

text(Bin) when is_binary(Bin) -> Bin;
text(Atom) when is_atom(Atom) -> atom_to_binary(Atom, utf8);
text(List) when is_list(List) -> unicode:characters_to_binary(List).

%% MQTT's is a number; EMQX's gateways give text (MQTT-SN <<"1.2">>, LwM2M <<"1.0.1">>).
proto_ver(Ver) when is_integer(Ver) -> Ver;
proto_ver(Ver) -> text(Ver).

optional_text(undefined) -> undefined;
optional_text(Value) -> text(Value).
