%% The config reaches the supervisor and the server inside a closure: the supervisor keeps its
%% init argument in its state, and supervisor reports print a child's start arguments, while the
%% config holds the password.
-module(emqx_rabbitmq_hook_sup).

-behaviour(supervisor).

-export([start_link/1, init/1, restart_server/1]).

-define(SERVER, emqx_rabbitmq_hook_server).

start_link(Config) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, fun() -> Config end).

init(GetConfig) ->
    {ok, {#{strategy => one_for_one, intensity => 5, period => 60}, [server(GetConfig)]}}.

%% Replace the server with one started with Config (the old one drains first).
-spec restart_server(map()) -> ok | {error, term()}.
restart_server(Config) ->
    _ = supervisor:terminate_child(?MODULE, ?SERVER),
    _ = supervisor:delete_child(?MODULE, ?SERVER),
    case supervisor:start_child(?MODULE, server(fun() -> Config end)) of
        {ok, _} -> ok;
        {error, Reason} -> {error, Reason}
    end.

server(GetConfig) ->
    #{drain_timeout_ms := DrainMs, connect_timeout_ms := ConnectMs} = GetConfig(),
    #{id => ?SERVER,
      start => {?SERVER, start_link, [GetConfig]},
      restart => permanent,
      %% The server drains the NIF when it stops: give it that long, plus a connection attempt a
      %% publisher may be in the middle of, plus a margin.
      shutdown => DrainMs + ConnectMs + 5000,
      type => worker}.
