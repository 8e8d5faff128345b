%% The NIF boundary (DESIGN §2). Every function is replaced when the library loads.
-module(emqx_rabbitmq_hook_nif).

-export([start/1, start/2, submit/2, stats/1, stop/2, presence/2]).
-export([loaded/0]).

-on_load(init/0).

-define(LOAD_ERROR, {?MODULE, load_error}).

%% The module loads even when its library does not (a missing libhiredis or librabbitmq, a build for
%% another system): EMQX 4 loads every plugin's modules as it boots and stops the broker on one that
%% fails. The reason is kept for loaded/0, and the plugin refuses to start with it.
init() ->
    case erlang:load_nif(filename:join(priv_dir(), "emqx_rabbitmq_hook_nif"), 0) of
        ok ->
            _ = persistent_term:erase(?LOAD_ERROR),
            ok;
        {error, {_Reason, Text}} ->
            persistent_term:put(?LOAD_ERROR, unicode:characters_to_binary(Text)),
            ok
    end.

%% ok once the library is loaded, else why it could not be.
-spec loaded() -> ok | {error, binary()}.
loaded() ->
    case persistent_term:get(?LOAD_ERROR, undefined) of
        undefined -> ok;
        Text -> {error, Text}
    end.

%% The plugin's priv dir; when the code is not laid out as an OTP application (a bare ebin on the
%% code path), the priv dir beside that ebin.
priv_dir() ->
    case code:priv_dir(emqx_rabbitmq_hook) of
        {error, bad_name} ->
            filename:join(filename:dirname(filename:dirname(code:which(?MODULE))), "priv");
        Dir ->
            Dir
    end.

%% A new boot: a new boot id, seq from 1, an empty presence table.
-spec start(map()) -> {ok, reference()} | {error, {atom(), term()}}.
start(Config) -> start(Config, undefined).

%% Previous, a handle whose stop/2 has returned (a configuration change), has its boot continued:
%% the new instance takes its boot id, its last seq and its presence table, unless the node name
%% changes or presence comes on (then a new boot). A start that fails takes nothing, so Previous can
%% be continued by another start.
-spec start(map(), reference() | undefined) -> {ok, reference()} | {error, {atom(), term()}}.
start(_Config, _Previous) -> erlang:nif_error(not_loaded).

-spec submit(reference(), tuple()) -> ok | {error, overloaded | closed | enomem}.
submit(_Handle, _Event) -> erlang:nif_error(not_loaded).

-spec stats(reference()) -> map().
stats(_Handle) -> erlang:nif_error(not_loaded).

-spec stop(reference(), non_neg_integer()) -> ok.
stop(_Handle, _TimeoutMs) -> erlang:nif_error(not_loaded).

%% Dirty I/O: one round trip to Redis with priv/presence_read.lua.
-spec presence(reference(), binary()) -> {ok, [{binary(), binary()}]} | {error, disabled | {redis, binary()}}.
presence(_Handle, _ClientId) -> erlang:nif_error(not_loaded).
