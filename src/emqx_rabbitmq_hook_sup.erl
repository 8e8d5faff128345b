-module(emqx_rabbitmq_hook_sup).

-behaviour(supervisor).

-export([start_link/1, init/1]).

start_link(Config) ->
    supervisor:start_link({local, ?MODULE}, ?MODULE, Config).

init(Config = #{drain_timeout_ms := DrainMs, connect_timeout_ms := ConnectMs}) ->
    Server = #{id => emqx_rabbitmq_hook_server,
               start => {emqx_rabbitmq_hook_server, start_link, [Config]},
               restart => permanent,
               %% The server drains the NIF when it stops: give it that long, plus a connection
               %% attempt a publisher may be in the middle of, plus a margin.
               shutdown => DrainMs + ConnectMs + 5000,
               type => worker},
    {ok, {#{strategy => one_for_one, intensity => 5, period => 60}, [Server]}}.
