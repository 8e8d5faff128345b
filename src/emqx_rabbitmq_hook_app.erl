%% Start: take the configuration (under EMQX 5 from the plugin configuration, see
%% emqx_rabbitmq_hook_emqx5), check it, start the tree (which starts the NIF), then register the
%% hooks and the emqx_ctl command.
%% Stop: remove the command and the hooks first (prep_stop), so no event arrives while the NIF drains.
%% A configuration change (reconfigure/1) keeps the application running: the server switches to it.
-module(emqx_rabbitmq_hook_app).

-behaviour(application).

-export([start/2, prep_stop/1, stop/1]).
-export([on_config_changed/2, reconfigure/1, reconfigure/2, replace_env/1]).

-include_lib("kernel/include/logger.hrl").

-define(APP, emqx_rabbitmq_hook).

start(_Type, _Args) ->
    case {emqx_rabbitmq_hook_nif:loaded(), emqx_rabbitmq_hook_emqx5:load_env()} of
        {{error, Why}, _} ->
            ?LOG_ERROR("emqx_rabbitmq_hook not started: its NIF library cannot be loaded: ~ts", [Why]),
            {error, {nif_not_loaded, Why}};
        {ok, ok} ->
            start_with(application:get_all_env(emqx_rabbitmq_hook));
        {ok, {error, Why}} ->
            ?LOG_ERROR("emqx_rabbitmq_hook not started: ~ts", [Why]),
            {error, {configuration, Why}}
    end.

start_with(Env) ->
    case emqx_rabbitmq_hook_config:parse(Env) of
        {ok, _Config} ->
            %% The server reads the same env.
            case emqx_rabbitmq_hook_sup:start_link() of
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
    emqx_rabbitmq_hook_server:forget_counters().

%% EMQX >= 5.7 calls this on <name>_app when a configuration changes in the dashboard or the HTTP
%% API. From 5.9 on, an error refuses the change; 5.7 and 5.8 store it whatever this returns.
-spec on_config_changed(map(), map()) -> ok | {error, unicode:unicode_binary()}.
on_config_changed(_OldConfig, NewConfig) ->
    emqx_rabbitmq_hook_emqx5:config_changed(NewConfig).

%% Make Env (an application env) the plugin's configuration. A bad value is refused with a message
%% naming the setting. When the plugin runs, the server switches to it and the same boot goes on
%% (clients stay online in the presence registry, message ids go on counting); when the new
%% configuration cannot start (say spool_dir cannot be created), the plugin runs on with the previous
%% one and its env, and the message says why. When the plugin is stopped, the next start reads it.
-spec reconfigure(list()) -> ok | {error, unicode:unicode_binary()}.
reconfigure(Env) ->
    reconfigure(Env, fun(Key) -> Key end).

%% The same, naming a setting in the message as Name(EnvKey) does (EMQX 5 has its own names).
-spec reconfigure(list(), fun((atom()) -> atom() | unicode:chardata())) -> ok | {error, unicode:unicode_binary()}.
reconfigure(Env, Name) ->
    case emqx_rabbitmq_hook_config:parse(Env) of
        {ok, Config} -> apply_config(Env, Config, Name);
        {error, Error} -> {error, emqx_rabbitmq_hook_config:format_error(Error, Name)}
    end.

%% The env changes only once the configuration runs: a server that restarts reads the one running.
apply_config(Env, Config, Name) ->
    Switched = fun() ->
                       Previous = application:get_all_env(?APP),
                       replace_env(Env),
                       rehook(Previous, Config, Env)
               end,
    try emqx_rabbitmq_hook_server:reconfigure(Config, Switched) of
        ok -> ok;
        {error, Error} -> {error, emqx_rabbitmq_hook_config:format_error(Error, Name)}
    catch
        exit:{noproc, _} -> replace_env(Env)   % not running: the next start reads it
    end.

%% The hooks stay registered through a switch: were they off for a moment, EMQX would call none and
%% those events would be missed without a trace. They are registered again only when the events
%% load/1 picks from the configuration change.
rehook(PreviousEnv, Config, Env) ->
    case hooked_events(PreviousEnv) =:= {ok, emqx_rabbitmq_hook:hooked_events(Config)} of
        true ->
            ok;
        false ->
            ok = emqx_rabbitmq_hook:unload(),
            emqx_rabbitmq_hook:load(Env)
    end.

hooked_events(Env) ->
    case emqx_rabbitmq_hook_config:parse(Env) of
        {ok, Config} -> {ok, emqx_rabbitmq_hook:hooked_events(Config)};
        {error, _} = Error -> Error
    end.

%% Env becomes the whole application env (also how emqx_rabbitmq_hook_emqx5 loads it at start).
-spec replace_env(list()) -> ok.
replace_env(Env) ->
    [application:unset_env(?APP, Key) || {Key, _} <- application:get_all_env(?APP)],
    [application:set_env(?APP, Key, Value) || {Key, Value} <- Env],
    ok.
