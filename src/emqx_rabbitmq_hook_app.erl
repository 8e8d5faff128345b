%% Start: take the configuration (under EMQX 5 from the plugin configuration, see
%% emqx_rabbitmq_hook_emqx5), check it, start the tree (which starts the NIF), then register the
%% hooks and the emqx_ctl command.
%% Stop: remove the command and the hooks first (prep_stop), so no event arrives while the NIF drains.
-module(emqx_rabbitmq_hook_app).

-behaviour(application).

-export([start/2, prep_stop/1, stop/1]).
-export([on_config_changed/2, reconfigure/0]).

-include_lib("kernel/include/logger.hrl").

start(_Type, _Args) ->
    case emqx_rabbitmq_hook_emqx5:load_env() of
        ok ->
            start_with(application:get_all_env(emqx_rabbitmq_hook));
        {error, Why} ->
            ?LOG_ERROR("emqx_rabbitmq_hook not started: ~ts", [Why]),
            {error, {configuration, Why}}
    end.

start_with(Env) ->
    case emqx_rabbitmq_hook_config:parse(Env) of
        {ok, Config} ->
            case emqx_rabbitmq_hook_sup:start_link(Config) of
                {ok, Sup} ->
                    ok = emqx_rabbitmq_hook:load(Env),
                    ok = emqx_rabbitmq_hook_ctl:load(),
                    {ok, Sup};
                {error, {shutdown, {failed_to_start_child, _, Reason}}} ->
                    {error, Reason};
                {error, Reason} ->
                    {error, Reason}
            end;
        {error, Error} ->
            ?LOG_ERROR("emqx_rabbitmq_hook not started: ~ts",
                       [emqx_rabbitmq_hook_config:format_error(Error)]),
            %% OTP logs this reason in its report of the failed start: never with a secret in it.
            {error, emqx_rabbitmq_hook_config:redact(Error)}
    end.

prep_stop(State) ->
    emqx_rabbitmq_hook_ctl:unload(),
    emqx_rabbitmq_hook:unload(),
    State.

stop(_State) ->
    ok.

%% EMQX >= 5.7 calls this on <name>_app before it stores a configuration changed in the dashboard
%% or the HTTP API; the EMQX releases that check the result refuse the change on an error.
-spec on_config_changed(map(), map()) -> ok | {error, unicode:unicode_binary()}.
on_config_changed(_OldConfig, NewConfig) ->
    emqx_rabbitmq_hook_emqx5:config_changed(NewConfig).

%% Apply the (checked) application env to the running plugin: the hooks come off, the server drains
%% and starts again with the new configuration, the hooks go back on. Nothing to do when stopped:
%% the next start reads the env.
-spec reconfigure() -> ok | {error, term()}.
reconfigure() ->
    case whereis(emqx_rabbitmq_hook_sup) of
        undefined ->
            ok;
        _ ->
            Env = application:get_all_env(emqx_rabbitmq_hook),
            {ok, Config} = emqx_rabbitmq_hook_config:parse(Env),
            ok = emqx_rabbitmq_hook:unload(),
            Result = emqx_rabbitmq_hook_sup:restart_server(Config),
            ok = emqx_rabbitmq_hook:load(Env),
            Result
    end.
