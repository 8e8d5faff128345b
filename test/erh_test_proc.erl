%% What the kernel says of this node's threads and of other processes, from /proc (proc(5)), and
%% signals to the servers the tests start (their pid files).
-module(erh_test_proc).

-export([stat/2, threads/1, signal/2]).

%% Send Signal ("STOP", "CONT") to the process whose pid PidFile holds.
signal(PidFile, Signal) ->
    {ok, Pid} = file:read_file(PidFile),
    [] = os:cmd("kill -" ++ Signal ++ " " ++ binary_to_list(string:trim(Pid))),
    ok.

%% Fields Ns of /proc/Path/stat as integers, numbered as in proc(5): 1 is the pid.
stat(Path, Ns) ->
    {ok, Stat} = file:read_file("/proc/" ++ Path ++ "/stat"),
    fields(Stat, Ns).

%% {Name, field N of its stat} for every thread of this node (one that ends meanwhile is left out).
threads(N) ->
    Task = "/proc/" ++ os:getpid() ++ "/task/",
    {ok, Tids} = file:list_dir(Task),
    [{string:trim(Name), Value}
     || Tid <- Tids, {ok, Name} <- [file:read_file(Task ++ Tid ++ "/comm")],
        {ok, Stat} <- [file:read_file(Task ++ Tid ++ "/stat")], [Value] <- [fields(Stat, [N])]].

%% The command name, field 2, is in parentheses and may hold spaces: fields from the 3rd follow it.
fields(Stat, Ns) ->
    [_, After] = string:split(Stat, <<") ">>, trailing),
    Fields = string:lexemes(After, " "),
    [binary_to_integer(lists:nth(N - 2, Fields)) || N <- Ns].
