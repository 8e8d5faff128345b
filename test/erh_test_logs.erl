%% What the plugin logs while a test runs, one formatted line per event.
-module(erh_test_logs).

%% logger handler callback
-export([log/2]).
-export([capture/1]).

%% logger handler: each event, formatted on one line, to the test process.
log(Event, #{config := #{to := Pid}}) ->
    Pid ! {log, unicode:characters_to_binary(logger_formatter:format(Event, #{single_line => true}))}.

%% Fun's result and the lines logged while it ran, from level info up.
capture(Fun) ->
    #{level := Level} = logger:get_primary_config(),
    ok = logger:set_primary_config(level, info),
    ok = logger:add_handler(erh_test_logs, ?MODULE, #{config => #{to => self()}}),
    Result = try Fun()
             after
                 logger:remove_handler(erh_test_logs),
                 logger:set_primary_config(level, Level)
             end,
    {Result, logged([])}.

logged(Acc) ->
    receive {log, Line} -> logged([Line | Acc])
    after 0 -> lists:reverse(Acc)
    end.
