%% The operator command: `emqx_ctl rabbitmq_hook status | stats` (EMQX 4), `emqx ctl rabbitmq_hook
%% status | stats` (EMQX 5). Registered while the plugin runs, through emqx_ctl:register_command/3
%% and unregister_command/1 (the same in EMQX 4.3/4.4 and 5); emqx_ctl calls cli/1 with the words
%% after the command, or with `usage` for its help. Without EMQX nothing is registered, and the same
%% text comes from format/1 on emqx_rabbitmq_hook:status() or stats().
-module(emqx_rabbitmq_hook_ctl).

-export([load/0, unload/0, cli/1, format/1]).

-define(CMD, rabbitmq_hook).
%% Keys of a connection (or of Redis') map that come first, in this order.
-define(LEADING_KEYS, [state, server]).

-spec load() -> ok.
load() ->
    when_emqx_ctl(fun() -> emqx_ctl:register_command(?CMD, {?MODULE, cli}, []) end).

-spec unload() -> ok.
unload() ->
    when_emqx_ctl(fun() -> emqx_ctl:unregister_command(?CMD) end).

%% Only where EMQX's command table runs: in any other node there is nothing to register with.
when_emqx_ctl(Fun) ->
    case code:ensure_loaded(emqx_ctl) =:= {module, emqx_ctl} andalso is_pid(whereis(emqx_ctl)) of
        true -> ok = Fun();
        false -> ok
    end.

cli(["status"]) ->
    print(format(emqx_rabbitmq_hook:status()));
cli(["stats"]) ->
    print(format(emqx_rabbitmq_hook:stats()));
cli(_) ->
    print([io_lib:format("~-22s# ~ts~n", [Usage, Text])
           || {Usage, Text} <- [{"rabbitmq_hook status", "Connection of each publisher (and of Redis), "
                                                          "queue depth, spool"},
                                {"rabbitmq_hook stats", "Every counter of the plugin"}]]).

%% The lines for a status() or stats() map: the keys in alphabetical order, one per line, each
%% publisher on its own line; whatever keys the map has.
-spec format(map()) -> iodata().
format(#{running := false}) ->
    "emqx_rabbitmq_hook is not running\n";
format(Map) ->
    ["emqx_rabbitmq_hook is running\n"
     | [line(Key, Value) || {Key, Value} <- lists:sort(maps:to_list(maps:remove(running, Map)))]].

line(connections, Connections) ->
    [io_lib:format("publisher ~b: ~ts~n", [Index, value(Connection)])
     || {Index, Connection} <- lists:zip(lists:seq(0, length(Connections) - 1), Connections)];
line(Key, Value) ->
    io_lib:format("~ts: ~ts~n", [Key, value(Value)]).

value(Map) when is_map(Map) ->
    Leading = [{K, maps:get(K, Map)} || K <- ?LEADING_KEYS, maps:is_key(K, Map)],
    Rest = lists:sort(maps:to_list(maps:without(?LEADING_KEYS, Map))),
    lists:join(" ", [[atom_to_list(K), $=, value(V)] || {K, V} <- Leading ++ Rest]);
value(Bin) when is_binary(Bin) ->
    Bin;
value(Atom) when is_atom(Atom) ->
    atom_to_list(Atom);
value(Int) when is_integer(Int) ->
    integer_to_list(Int);
value(Other) ->
    io_lib:format("~0tp", [Other]).

print(Text) ->
    io:format("~ts", [Text]).
