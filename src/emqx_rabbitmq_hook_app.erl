%% Start: check the configuration, start the tree (which starts the NIF), then register the hooks.
%% Stop: remove the hooks first (prep_stop), so no event arrives while the NIF drains.
-module(emqx_rabbitmq_hook_app).

-behaviour(application).

-export([start/2, prep_stop/1, stop/1]).

-include_lib("kernel/include/logger.hrl").

start(_Type, _Args) ->
    Env = application:get_all_env(emqx_rabbitmq_hook),
    case emqx_rabbitmq_hook_config:parse(Env) of
        {ok, Config} ->
            case emqx_rabbitmq_hook_sup:start_link(emqx_rabbitmq_hook_config:hide_secrets(Config)) of
                {ok, Sup} ->
                    ok = emqx_rabbitmq_hook:load(Env),
                    {ok, Sup};
                {error, {shutdown, {failed_to_start_child, _, Reason}}} ->
                    {error, Reason};
                {error, Reason} ->
                    {error, Reason}
            end;
        {error, Error} ->
            ?LOG_ERROR("emqx_rabbitmq_hook not started: ~ts",
                       [emqx_rabbitmq_hook_config:format_error(Error)]),
            {error, Error}
    end.

prep_stop(State) ->
    emqx_rabbitmq_hook:unload(),
    State.

stop(_State) ->
    ok.
