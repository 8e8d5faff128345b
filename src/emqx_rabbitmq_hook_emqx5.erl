%% Where the configuration comes from under EMQX 5, and how a change made in EMQX reaches the plugin.
%%
%% EMQX 4 fills the application env itself (from etc/emqx_rabbitmq_hook.conf through the
%% cuttlefish schema) and a plain Erlang node from sys.config: then nothing here runs. Under EMQX 5
%% the env is replaced, at each start, by the plugin configuration translated with
%% emqx_rabbitmq_hook_hocon:
%% - EMQX 5.7 and later keep the operator's copy of priv/config.hocon (editable in the dashboard,
%%   checked against priv/config_schema.avsc) and hand it out with emqx_plugins:get_config/1
%%   ({ok, Map} in 5.7, the map itself later); a change is announced to
%%   emqx_rabbitmq_hook_app:on_config_changed/2 (EMQX calls <name>_app, see
%%   emqx_plugins:maybe_call_on_config_changed/2).
%% - EMQX 5.0 to 5.6 have no plugin configuration: the plugin reads priv/config.hocon, or the file
%%   named by $RABBITMQ_HOOK_CONFIG, with the hocon library every EMQX 5 release ships.
%% Calls into EMQX and hocon are made only after checking that the module is there.
-module(emqx_rabbitmq_hook_emqx5).

-export([load_env/0, config_changed/1]).

-include_lib("kernel/include/logger.hrl").

-define(APP, emqx_rabbitmq_hook).
-define(CONFIG_FILE_VAR, "RABBITMQ_HOOK_CONFIG").

%% Under EMQX 5, replace the application env with the plugin configuration; elsewhere do nothing.
-spec load_env() -> ok | {error, unicode:unicode_binary()}.
load_env() ->
    case emqx_rabbitmq_hook:broker() of
        emqx5 ->
            case read_config() of
                {ok, Config} -> with_env(Config, fun emqx_rabbitmq_hook_app:replace_env/1);
                {error, _} = Error -> Error
            end;
        _ ->
            ok
    end.

%% A configuration changed in EMQX (the new map): refused with a message naming the setting if it
%% is invalid or cannot start (the plugin then runs on as it was), else applied, see
%% emqx_rabbitmq_hook_app:reconfigure/1. The refusal is logged too: EMQX 5.7 and 5.8 ignore what
%% this returns and store the change all the same.
-spec config_changed(map()) -> ok | {error, unicode:unicode_binary()}.
config_changed(Config) ->
    case with_env(Config, fun(Env) -> emqx_rabbitmq_hook_app:reconfigure(Env, fun emqx_rabbitmq_hook_hocon:setting/1) end) of
        ok ->
            ok;
        {error, Why} = Error ->
            ?LOG_ERROR("emqx_rabbitmq_hook refused a configuration change and runs on with its previous "
                       "configuration: ~ts (EMQX before 5.9 stores the change all the same, and the plugin "
                       "reads it at its next start: correct it or set the previous values back)", [Why]),
            Error
    end.

with_env(Config, Fun) ->
    case emqx_rabbitmq_hook_hocon:to_env(Config) of
        {ok, Env} -> Fun(Env);
        {error, Error} -> {error, emqx_rabbitmq_hook_hocon:format_error(Error)}
    end.

read_config() ->
    case managed_config() of
        {ok, Config} -> {ok, Config};
        none -> read_file(config_file())
    end.

%% EMQX >= 5.7: the operator's configuration; none when EMQX has none for this plugin.
managed_config() ->
    case exported(emqx_plugins, get_config, 1) of
        true ->
            {ok, Vsn} = application:get_key(?APP, vsn),
            try emqx_plugins:get_config(iolist_to_binary([atom_to_list(?APP), "-", Vsn])) of
                {ok, Config} when is_map(Config), map_size(Config) > 0 -> {ok, Config};
                Config when is_map(Config), map_size(Config) > 0 -> {ok, Config};
                _ -> none
            catch
                _:_ -> none
            end;
        false ->
            none
    end.

config_file() ->
    case os:getenv(?CONFIG_FILE_VAR) of
        File when is_list(File), File =/= "" -> File;
        _ -> filename:join(code:priv_dir(?APP), "config.hocon")
    end.

read_file(File) ->
    case exported(hocon, load, 1) of
        true ->
            case hocon:load(File) of
                {ok, Config} -> {ok, Config};
                {error, Reason} -> {error, iolist_to_binary(io_lib:format("cannot read ~ts: ~0tp", [File, Reason]))}
            end;
        false ->
            {error, <<"the hocon library of EMQX 5 is not in this node">>}
    end.

exported(Module, Function, Arity) ->
    case code:ensure_loaded(Module) of
        {module, Module} -> erlang:function_exported(Module, Function, Arity);
        {error, _} -> false
    end.
