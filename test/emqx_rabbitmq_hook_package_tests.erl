%% The packages operators install: both are built (make package-emqx4 package-emqx5), unpacked
%% into a temporary folder and checked file by file; then, for each, a fresh Erlang node with only
%% the unpacked ebin on its code path starts the plugin from there (the NIF loads from the
%% unpacked priv) and publishes an event to the test RabbitMQ.
-module(emqx_rabbitmq_hook_package_tests).

-include_lib("eunit/include/eunit.hrl").

-define(APP, emqx_rabbitmq_hook).
-define(NAME, "emqx_rabbitmq_hook").

root() ->
    filename:dirname(filename:dirname(proplists:get_value(source, ?MODULE:module_info(compile)))).

package_test_() ->
    erh_test_fixture:each(fun setup/0, fun cleanup/1, 120, tests(), fun(Test, Ctx) -> Test(Ctx) end).

tests() ->
    [fun emqx4_package_is_the_app_folder_with_nif_schema_and_conf/1,
     fun emqx5_package_has_release_json_and_the_app_with_its_config/1,
     fun every_module_is_in_both_packages_and_in_their_app_file/1,
     fun emqx4_package_runs_from_where_it_is_unpacked/1,
     fun emqx5_package_runs_from_where_it_is_unpacked/1,
     fun a_nif_library_that_cannot_load_leaves_the_broker_booting/1].

setup() ->
    {Status, Output} = run(os:find_executable("make"), ["-C", root(), "package-emqx4", "package-emqx5"], 600000),
    ?assertEqual({0, <<>>}, {Status, case Status of 0 -> <<>>; _ -> Output end}),
    Vsn = vsn(),
    Tmp = filename:join(tmp_dir(), "erh_packages_" ++ os:getpid() ++ "_" ++ integer_to_list(erlang:unique_integer([positive]))),
    Packages = filename:join(root(), "_build/packages"),
    Unpack = fun(Tarball, Dir) ->
                     ok = erl_tar:extract(filename:join(Packages, Tarball), [compressed, {cwd, filename:join(Tmp, Dir)}]),
                     filename:join(Tmp, Dir)
             end,
    #{vsn => Vsn, tmp => Tmp, packages => Packages,
      emqx4 => Unpack(?NAME ++ "-" ++ Vsn ++ "-emqx4.tar.gz", "emqx4"),
      emqx5 => Unpack(?NAME ++ "-" ++ Vsn ++ ".tar.gz", "emqx5"),
      rabbit => erh_test_rabbit:start()}.

cleanup(#{tmp := Tmp, rabbit := Rabbit}) ->
    erh_test_rabbit:stop(Rabbit),
    os:cmd("rm -rf '" ++ Tmp ++ "'").

vsn() ->
    {ok, [{application, ?APP, Props}]} = file:consult(filename:join(root(), "src/" ?NAME ".app.src")),
    proplists:get_value(vsn, Props).

tmp_dir() ->
    case os:getenv("TMPDIR") of
        false -> "/tmp";
        Dir -> Dir
    end.

%% Relative paths of the regular files under Dir.
files(Dir) ->
    lists:sort([F || F <- filelib:wildcard("**", Dir), filelib:is_regular(filename:join(Dir, F))]).

same_file(A, B) ->
    {ok, BinA} = file:read_file(A),
    {ok, BinB} = file:read_file(B),
    BinA =:= BinB.

%%--------------------------------------------------------------------
%% Contents
%%--------------------------------------------------------------------

%% EMQX 4 (emqx_plugins of 4.3/4.4) loads every *.beam of <plugin>/ebin, finds the app by its
%% .app, the config at etc/<app>.conf with priv/<app>.schema, and the NIF through code:priv_dir.
emqx4_package_is_the_app_folder_with_nif_schema_and_conf(#{emqx4 := Dir}) ->
    ?assertEqual([?NAME], filelib:wildcard("*", Dir)),
    App = filename:join(Dir, ?NAME),
    Files = files(App),
    ?assertEqual([], ["ebin/" ?NAME ".app", "priv/" ?NAME "_nif.so", "priv/" ?NAME ".schema",
                      "etc/" ?NAME ".conf"] -- Files),
    ?assertEqual([], [F || F <- Files, not lists:member(hd(filename:split(F)), ["ebin", "priv", "etc"])]),
    [?assert(same_file(filename:join(App, F), filename:join(root(), F)))
     || F <- ["priv/" ?NAME "_nif.so", "priv/" ?NAME ".schema", "etc/" ?NAME ".conf"]].

%% EMQX 5 (emqx_plugins): NAME-VSN.tar.gz holding NAME-VSN/release.json, whose name-rel_vsn is the
%% package name and whose rel_apps name the app folders beside it.
emqx5_package_has_release_json_and_the_app_with_its_config(#{emqx5 := Dir, vsn := Vsn}) ->
    Rel = ?NAME "-" ++ Vsn,
    ?assertEqual([Rel], filelib:wildcard("*", Dir)),
    RelDir = filename:join(Dir, Rel),
    {ok, Json} = file:read_file(filename:join(RelDir, "release.json")),
    Info = jsx:decode(Json, [return_maps]),
    ?assertMatch(#{<<"name">> := <<?NAME>>, <<"description">> := <<_, _/binary>>,
                   <<"compatibility">> := #{<<"emqx">> := <<"~>5.", _/binary>>},
                   <<"with_config_schema">> := true}, Info),
    #{<<"name">> := Name, <<"rel_vsn">> := RelVsn, <<"rel_apps">> := Apps,
      <<"built_on_otp_release">> := Otp} = Info,
    ?assertEqual(nomatch, binary:match(Name, <<"-">>)),
    ?assertEqual(list_to_binary(Rel), <<Name/binary, "-", RelVsn/binary>>),
    ?assertEqual([list_to_binary(?NAME "-" ++ Vsn)], Apps),
    ?assertEqual(list_to_binary(erlang:system_info(otp_release)), Otp),
    ?assertEqual(lists:sort(["release.json", "README.md", binary_to_list(hd(Apps))]), lists:sort(filelib:wildcard("*", RelDir))),
    AppDir = filename:join(RelDir, binary_to_list(hd(Apps))),
    Files = files(AppDir),
    ?assertEqual([], ["ebin/" ?NAME ".app", "priv/" ?NAME "_nif.so", "priv/config.hocon", "priv/config_schema.avsc"] -- Files),
    ?assertEqual([], [F || F <- Files, not lists:member(hd(filename:split(F)), ["ebin", "priv"])]),
    [?assert(same_file(filename:join(AppDir, F), filename:join(root(), F)))
     || F <- ["priv/" ?NAME "_nif.so", "priv/config.hocon", "priv/config_schema.avsc"]].

%% The .app lists every module (EMQX 4 refuses a plugin whose .app misses one; EMQX 5 stops and
%% purges the modules the .app lists), every module of src/ is there, and exactly one carries
%% -emqx_plugin (EMQX 4 lists plugins by that attribute).
every_module_is_in_both_packages_and_in_their_app_file(#{emqx4 := Emqx4, emqx5 := Emqx5, vsn := Vsn}) ->
    Sources = lists:sort([list_to_atom(filename:basename(F, ".erl")) || F <- filelib:wildcard(filename:join(root(), "src/*.erl"))]),
    [begin
         {ok, [{application, ?APP, Props}]} = file:consult(filename:join(Ebin, ?NAME ".app")),
         Beams = lists:sort([list_to_atom(filename:basename(F, ".beam")) || F <- filelib:wildcard(filename:join(Ebin, "*.beam"))]),
         ?assertEqual(Sources, lists:sort(proplists:get_value(modules, Props))),
         ?assertEqual(Sources, Beams),
         ?assertEqual(Vsn, proplists:get_value(vsn, Props)),
         Plugins = [M || M <- Beams,
                         {ok, {_, [{attributes, Attrs}]}} <- [beam_lib:chunks(filename:join(Ebin, atom_to_list(M)), [attributes])],
                         lists:keymember(emqx_plugin, 1, Attrs)],
         ?assertEqual([?APP], Plugins)
     end || Ebin <- [filename:join([Emqx4, ?NAME, "ebin"]),
                     filename:join([Emqx5, ?NAME "-" ++ Vsn, ?NAME "-" ++ Vsn, "ebin"])]].

%%--------------------------------------------------------------------
%% Running from the unpacked folders
%%--------------------------------------------------------------------

emqx4_package_runs_from_where_it_is_unpacked(Ctx = #{emqx4 := Dir}) ->
    runs_from(Ctx, filename:join(Dir, ?NAME)).

emqx5_package_runs_from_where_it_is_unpacked(Ctx = #{emqx5 := Dir, vsn := Vsn}) ->
    runs_from(Ctx, filename:join([Dir, ?NAME "-" ++ Vsn, ?NAME "-" ++ Vsn])).

%% A fresh node (no ERL_LIBS, only AppDir/ebin added) starts the application, hands it one event
%% through the hook EMQX calls, waits for RabbitMQ's confirm and prints where the code came from.
runs_from(#{rabbit := Rabbit, tmp := Tmp}, AppDir) ->
    Unique = integer_to_list(erlang:unique_integer([positive])),
    Queue = "pkg.q." ++ Unique,
    Payload = "from " ++ AppDir,
    Env = [{servers, ["127.0.0.1:" ++ integer_to_list(erh_test_rabbit:port(Rabbit))]},
           {exchange, "pkg.ex." ++ Unique}, {queues, [{Queue, ["#"]}]}],
    Script = lists:flatten(io_lib:format(
        "try~n"
        "  ok = application:load(emqx_rabbitmq_hook),~n"
        "  [application:set_env(emqx_rabbitmq_hook, K, V) || {K, V} <- ~p],~n"
        "  {ok, _} = application:ensure_all_started(emqx_rabbitmq_hook),~n"
        "  Msg = {message, <<0:128>>, 1, <<\"pkg\">>, #{}, #{}, <<\"pkg/t\">>, ~p, 1700000000000},~n"
        "  {ok, Msg} = emqx_rabbitmq_hook:on_message_publish(Msg, []),~n"
        "  Wait = fun W(0) -> timeout; W(N) -> case emqx_rabbitmq_hook:stats() of #{confirmed := 1} -> ok; _ -> timer:sleep(50), W(N - 1) end end,~n"
        "  ok = Wait(400),~n"
        "  io:format(\"~~n~~0p~~n\", [{loaded, code:which(emqx_rabbitmq_hook_nif), code:priv_dir(emqx_rabbitmq_hook)}]),~n"
        "  ok = application:stop(emqx_rabbitmq_hook),~n"
        "  halt(0)~n"
        "catch C:R:S -> io:format(\"~~p~~n\", [{C, R, S}]), halt(1)~n"
        "end.", [Env, list_to_binary(Payload)])),
    %% In the temporary folder: what the plugin writes relative to its working directory (the
    %% spool) stays there.
    {Status, Output} = run(os:find_executable("erl"), ["-noshell", "-pa", filename:join(AppDir, "ebin"), "-eval", Script],
                           90000, [{cd, Tmp}, {env, [{"ERL_LIBS", false}]}]),
    ?assertEqual({0, Output}, {Status, Output}),
    {match, [Line]} = re:run(Output, "^\\{loaded,.*$", [multiline, {capture, first, list}]),
    {ok, Tokens, _} = erl_scan:string(Line ++ "."),
    {ok, {loaded, Beam, Priv}} = erl_parse:parse_term(Tokens),
    ?assertEqual(filename:join([AppDir, "ebin", "emqx_rabbitmq_hook_nif.beam"]), Beam),
    ?assertEqual(filename:join(AppDir, "priv"), Priv),
    [#{json := Event}] = erh_test_rabbit:fetch_json(Rabbit, list_to_binary(Queue), 1),
    ?assertMatch(#{<<"action">> := <<"message_publish">>, <<"topic">> := <<"pkg/t">>}, Event),
    ?assertEqual(list_to_binary(Payload), maps:get(<<"payload">>, Event)).

%% EMQX 4 loads every module of every plugin folder as it boots, and stops when one fails to load. A
%% library that cannot load (here: not an ELF file; on a host, a missing libhiredis, say) must not
%% stop the broker: every module loads, and the plugin refuses to start, saying why.
a_nif_library_that_cannot_load_leaves_the_broker_booting(#{emqx4 := Dir, tmp := Tmp}) ->
    AppDir = filename:join(Tmp, "broken/" ?NAME),
    ok = filelib:ensure_dir(filename:join(AppDir, "x")),
    "" = os:cmd("cp -r '" ++ filename:join(Dir, ?NAME) ++ "/.' '" ++ AppDir ++ "'"),
    ok = file:write_file(filename:join(AppDir, "priv/emqx_rabbitmq_hook_nif.so"), <<"not a library">>),
    Script =
        "Loaded = [code:load_file(list_to_atom(filename:basename(F, \".beam\"))) || F <- filelib:wildcard(\"" ++
        filename:join(AppDir, "ebin") ++ "/*.beam\")],~n"
        "true = lists:all(fun({module, _}) -> true; (_) -> false end, Loaded),~n"
        "{error, Why} = application:ensure_all_started(emqx_rabbitmq_hook),~n"
        "io:format(\"~~n~~0p~~n\", [{refused, Why}]),~n"
        "halt(0).",
    {Status, Output} = run(os:find_executable("erl"), ["-noshell", "-pa", filename:join(AppDir, "ebin"),
                                                       "-eval", lists:flatten(io_lib:format(Script, []))],
                           60000, [{cd, Tmp}, {env, [{"ERL_LIBS", false}]}]),
    ?assertEqual({0, Output}, {Status, Output}),
    ?assertMatch({match, _}, re:run(Output, "NIF library cannot be loaded: .*emqx_rabbitmq_hook_nif\\.so")),
    ?assertMatch({match, _}, re:run(Output, "\\{refused,.*nif_not_loaded")).

%% Run an executable; its exit status and output (stdout and stderr), killed after TimeoutMs.
run(Exe, Args, TimeoutMs) ->
    run(Exe, Args, TimeoutMs, []).

run(Exe, Args, TimeoutMs, Options) ->
    Port = open_port({spawn_executable, os:find_executable("timeout")},
                     [{args, [integer_to_list(TimeoutMs div 1000), Exe | Args]},
                      exit_status, stderr_to_stdout, binary | Options]),
    collect(Port, <<>>).

collect(Port, Acc) ->
    receive
        {Port, {data, Data}} -> collect(Port, <<Acc/binary, Data/binary>>);
        {Port, {exit_status, Status}} -> {Status, Acc}
    end.
