%% One child, the server that owns the NIF instance. The server reads its configuration from the
%% application env when it starts, and switches configurations itself (it continues the boot of
%% the instance it replaces), so no configuration, and no password, lives in the supervisor.
-module(emqx_rabbitmq_hook_sup).

-behaviour(supervisor).

-export([start_link/0, init/1]).

-define(SERVER, emqx_rabbitmq_hook_server).

start_link() ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, []).

init([]) ->
    {ok, {#{strategy => one_for_one, intensity => 5, period => 60}, [server()]}}.

server() ->
    #{id => ?SERVER,
      start => {?SERVER, start_link, []},
      restart => permanent,
      %% The server drains the NIF when it stops: for drain_timeout, plus a connection attempt a
      %% publisher may be in the middle of, plus a margin. A configuration change may raise both
      %% while the server runs, so the bound is their largest accepted values; the server itself
      %% stops within what its configuration says.
      shutdown => emqx_rabbitmq_hook_config:max_value(drain_timeout_ms)
                  + emqx_rabbitmq_hook_config:max_value(connect_timeout_ms) + 5000,
      type => worker}.
