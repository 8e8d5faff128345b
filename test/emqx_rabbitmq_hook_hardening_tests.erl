%% Trust and input limits end to end, against a real RabbitMQ that also listens for TLS with
%% certificates made by the test setup: events over TLS with the server verified, refusals that
%% say why, EXTERNAL login with a client certificate, a password that shows up nowhere, payloads
%% above max_payload_bytes and routing keys above 255 bytes.
-module(emqx_rabbitmq_hook_hardening_tests).

-include_lib("eunit/include/eunit.hrl").
-include_lib("amqp_client/include/amqp_client.hrl").

%% logger handler callback: every log event of a test goes to its collector
-export([log/2]).

-define(HANDLER, erh_hardening_capture).
-define(PASSWORD, <<"Pw-7c1e94b2-never-log-me">>).
-define(CLIENT_CN, <<"erh-client">>).

hardening_test_() ->
    erh_test_fixture:each(fun erh_test_rabbit:start_tls/0, fun erh_test_rabbit:stop/1, 120, tests(), fun run/2).

tests() ->
    [fun events_arrive_over_tls_with_the_server_verified/1,
     fun a_server_certificate_from_an_unknown_ca_is_refused_with_the_reason/1,
     fun the_server_name_is_verified_and_tls_server_name_replaces_the_host/1,
     fun tls_verify_false_connects_unchecked_and_warns/1,
     fun external_login_uses_the_client_certificate/1,
     fun tls_to_a_plain_port_fails_with_a_tls_reason/1,
     fun a_key_that_is_not_the_certificates_is_reported/1,
     fun bad_tls_settings_refuse_to_start_naming_the_key/1,
     fun a_queue_declared_with_other_arguments_is_refused_with_the_reason/1,
     fun the_password_appears_in_no_log_stats_status_or_error/1,
     fun payloads_above_max_payload_bytes_arrive_as_size_and_flag/1,
     fun routing_keys_of_long_topics_and_client_ids_are_cut_at_255_bytes/1].

run(Test, Rabbit) ->
    Unique = integer_to_binary(erlang:unique_integer([positive])),
    Logs = capture_logs(),
    Ctx = #{rabbit => Rabbit, logs => Logs, exchange => <<"hard.ex.", Unique/binary>>,
            queue => <<"hard.q.", Unique/binary>>},
    try Test(Ctx)
    after
        erh_test_rabbit:stop_plugin(),
        stop_capture(Logs)
    end.

%% Plugin env over plain TCP, with this test's exchange and queue, Overrides on top.
env(#{rabbit := Rabbit, exchange := Ex, queue := Q}, Overrides) ->
    erh_test_rabbit:plugin_env(Rabbit, [{node, <<"emqx@127.0.0.1">>}, {exchange, Ex}, {queues, [{Q, ["#"]}]},
                                        {drain_timeout_ms, 500} | Overrides]).

%% The same over TLS to 127.0.0.1, trusting the CA that signed the server's certificate.
tls_env(Ctx = #{rabbit := Rabbit}, Overrides) ->
    TlsPort = integer_to_list(erh_test_rabbit:tls_port(Rabbit)),
    env(Ctx, [{servers, ["127.0.0.1:" ++ TlsPort]}, {tls_enable, true},
              {tls_cacertfile, file(Ctx, "ca.pem")} | Overrides]).

file(#{rabbit := Rabbit}, Name) ->
    erh_test_rabbit:tls_file(Rabbit, Name).

start(Env) ->
    {ok, _} = erh_test_rabbit:start_plugin(Env).

publish(Topic, Payload) ->
    Message = erh_test_emqx:message(emqx5, <<"dev-h">>, <<"u">>, Topic, Payload),
    {ok, _} = emqx_rabbitmq_hook:on_message_publish(Message, []).

stats() ->
    emqx_rabbitmq_hook:stats().

wait_for_failures(N) ->
    ?assert(erh_test_rabbit:wait_for(fun() -> maps:get(connect_failures, stats()) >= N end, 30000, 50)).

%% The TLS connections RabbitMQ sees, as {User, AuthMechanism}.
tls_connections(#{rabbit := Rabbit}) ->
    Out = erh_test_rabbit:ctl(Rabbit, ["list_connections", "--quiet", "--no-table-headers", "ssl",
                                       "auth_mechanism", "user"]),
    [{User, Mechanism} || Line <- binary:split(Out, <<"\n">>, [global]),
                          [<<"true">>, Mechanism, User] <- [binary:split(Line, <<"\t">>, [global])]].

%% Wait until RabbitMQ lists exactly Expected as its TLS connections (closed ones take a moment).
assert_tls_connections(Ctx, Expected) ->
    Ok = erh_test_rabbit:wait_for(fun() -> tls_connections(Ctx) =:= Expected end, 10000, 100),
    ?assertEqual({true, Expected}, {Ok, tls_connections(Ctx)}).

%%--------------------------------------------------------------------
%% TLS
%%--------------------------------------------------------------------

events_arrive_over_tls_with_the_server_verified(Ctx) ->
    start(tls_env(Ctx, [])),
    publish(<<"tls/1">>, <<"over TLS">>),
    [#{json := J}] = emqx_rabbitmq_hook_tests:receive_json(Ctx, 1),
    ?assertMatch(#{<<"topic">> := <<"tls/1">>, <<"payload">> := <<"over TLS">>}, J),
    assert_tls_connections(Ctx, [{<<"guest">>, <<"PLAIN">>}]).

a_server_certificate_from_an_unknown_ca_is_refused_with_the_reason(Ctx) ->
    start(tls_env(Ctx, [{tls_cacertfile, file(Ctx, "other_ca.pem")}])),
    publish(<<"tls/2">>, <<"kept">>),
    wait_for_failures(1),
    %% The server sends its chain up to the CA we do not trust.
    wait_log(Ctx, [<<"cannot connect">>, <<"SSL handshake failed (certificate verify failed: self-signed">>]),
    %% The event is kept: in memory, or already moved to the spool while no connection is up.
    #{confirmed := 0, queue_depth := InMemory, spool_events := Spooled, connections := [#{state := connecting}]} =
        stats(),
    ?assertEqual(1, InMemory + Spooled),
    assert_tls_connections(Ctx, []).

the_server_name_is_verified_and_tls_server_name_replaces_the_host(Ctx) ->
    start(tls_env(Ctx, [{tls_server_name, "rabbit.elsewhere.example"}])),
    wait_for_failures(1),
    wait_log(Ctx, [<<"cannot connect">>, <<"certificate verify failed: hostname mismatch">>]),
    erh_test_rabbit:stop_plugin(),
    start(tls_env(Ctx, [{tls_server_name, "localhost"}])),
    publish(<<"tls/3">>, <<"named">>),
    [#{json := J}] = emqx_rabbitmq_hook_tests:receive_json(Ctx, 1),
    ?assertMatch(#{<<"topic">> := <<"tls/3">>}, J).

tls_verify_false_connects_unchecked_and_warns(Ctx) ->
    start(tls_env(Ctx, [{tls_cacertfile, file(Ctx, "other_ca.pem")}, {tls_verify, false}])),
    publish(<<"tls/4">>, <<"unchecked">>),
    [#{json := J}] = emqx_rabbitmq_hook_tests:receive_json(Ctx, 1),
    ?assertMatch(#{<<"topic">> := <<"tls/4">>}, J),
    wait_log(Ctx, [<<"tls_verify is false">>, <<"certificate is not checked">>]).

external_login_uses_the_client_certificate(Ctx) ->
    %% The user name and password are not used: RabbitMQ takes the name from the certificate.
    start(tls_env(Ctx, [{auth_mechanism, external}, {tls_certfile, file(Ctx, "client.pem")},
                        {tls_keyfile, file(Ctx, "client.key")}, {username, "not-used"},
                        {password, "not-used"}])),
    publish(<<"tls/5">>, <<"by certificate">>),
    [#{json := J}] = emqx_rabbitmq_hook_tests:receive_json(Ctx, 1),
    ?assertMatch(#{<<"topic">> := <<"tls/5">>}, J),
    assert_tls_connections(Ctx, [{?CLIENT_CN, <<"EXTERNAL">>}]).

tls_to_a_plain_port_fails_with_a_tls_reason(Ctx = #{rabbit := Rabbit}) ->
    start(tls_env(Ctx, [{servers, ["127.0.0.1:" ++ integer_to_list(erh_test_rabbit:port(Rabbit))]}])),
    wait_for_failures(1),
    wait_log(Ctx, [<<"cannot connect">>, <<"SSL handshake failed (wrong version number)">>]).

a_key_that_is_not_the_certificates_is_reported(Ctx) ->
    start(tls_env(Ctx, [{tls_certfile, file(Ctx, "client.pem")}, {tls_keyfile, file(Ctx, "server.key")}])),
    wait_for_failures(1),
    wait_log(Ctx, [<<"cannot connect">>, <<"tls_keyfile ">>, <<"server.key: key values mismatch">>]).

bad_tls_settings_refuse_to_start_naming_the_key(Ctx) ->
    Cert = file(Ctx, "client.pem"),
    ClientKey = file(Ctx, "client.key"),
    Bad = [{tls_cacertfile, [{tls_cacertfile, "/nonexistent/ca.pem"}], <<"cannot be read">>},
           {tls_cacertfile, [{tls_cacertfile, ClientKey}], <<"holds no PEM certificate">>},
           {tls_keyfile, [{tls_certfile, Cert}], <<"goes with tls_certfile">>},
           {tls_keyfile, [{tls_keyfile, ClientKey}], <<"goes with tls_certfile">>},
           {tls_keyfile, [{tls_certfile, Cert}, {tls_keyfile, file(Ctx, "client_encrypted.key")}],
            <<"is encrypted">>},
           {auth_mechanism, [{auth_mechanism, external}], <<"needs tls_enable = true, tls_certfile">>},
           {auth_mechanism, [{tls_enable, false}, {tls_certfile, Cert}, {tls_keyfile, ClientKey},
                             {auth_mechanism, external}], <<"needs tls_enable = true">>},
           {tls_enable, [{tls_enable, yes}], <<"is not true or false">>},
           {tls_verify, [{tls_verify, "false"}], <<"is not true or false">>}],
    [begin
         ?assertMatch({{error, {emqx_rabbitmq_hook, {{Key, _}, _}}}, Key},
                      {erh_test_rabbit:start_plugin(tls_env(Ctx, Overrides)), Key}),
         wait_log(Ctx, [<<"invalid value for ", (atom_to_binary(Key))/binary>>, Why])
     end || {Key, Overrides, Why} <- Bad],
    ?assertEqual(undefined, emqx_rabbitmq_hook_server:handle()),
    %% The NIF refuses the same combinations in the map it is given, whatever Erlang let through.
    {ok, Good} = emqx_rabbitmq_hook_config:parse([]),
    {CertBin, KeyBin} = {list_to_binary(Cert), list_to_binary(ClientKey)},
    [?assertEqual({error, {Key, badarg}}, emqx_rabbitmq_hook_nif:start(maps:merge(Good, Values)))
     || {Key, Values} <- [{tls_keyfile, #{tls_certfile => CertBin}},
                          {tls_keyfile, #{tls_keyfile => KeyBin}},
                          {auth_mechanism, #{auth_mechanism => external}},
                          {auth_mechanism, #{tls_certfile => CertBin, tls_keyfile => KeyBin,
                                             auth_mechanism => external}},
                          {auth_mechanism, #{auth_mechanism => <<"external">>}},
                          {tls_enable, #{tls_enable => 1}},
                          {tls_verify, #{tls_verify => undefined}},
                          {tls_server_name, #{tls_server_name => <<"a", 0>>}},
                          {max_payload_bytes, #{max_payload_bytes => -1}},
                          {max_payload_bytes, #{max_payload_bytes => 268435457}},
                          {queue_version, #{queue_version => 3}}]].

%% A queue that exists without the arguments the plugin declares it with (created by hand, or by
%% a consumer first): RabbitMQ refuses the declaration, the plugin says why and keeps the events
%% (in the spool at stop); queue_mode = default and queue_version = 0 match the queue.
a_queue_declared_with_other_arguments_is_refused_with_the_reason(Ctx = #{rabbit := Rabbit, queue := Q}) ->
    erh_test_rabbit:with_channel(
      Rabbit, fun(Channel) ->
                      #'queue.declare_ok'{} = amqp_channel:call(Channel, #'queue.declare'{queue = Q, durable = true})
              end),
    Spool = {spool_dir, filename:join([maps:get(dir, Rabbit), "spool", Q])},
    NoUnroutable = {unroutable_queue, ""},
    start(env(Ctx, [Spool, NoUnroutable])),
    wait_for_failures(1),
    wait_log(Ctx, [<<"cannot connect">>, <<"declaring a queue">>, <<"inequivalent arg 'x-queue-mode'">>]),
    publish(<<"t/1">>, <<"kept">>),
    erh_test_rabbit:stop_plugin(),
    start(env(Ctx, [Spool, NoUnroutable, {queue_mode, default}, {queue_version, 0}])),
    [#{json := #{<<"payload">> := <<"kept">>}}] = emqx_rabbitmq_hook_tests:receive_json(Ctx, 1),
    ?assertEqual(#{}, erh_test_rabbit:queue_arguments(Rabbit, Q)).

%%--------------------------------------------------------------------
%% Secrets
%%--------------------------------------------------------------------

the_password_appears_in_no_log_stats_status_or_error(Ctx = #{rabbit := Rabbit}) ->
    Dir = filename:join(filename:dirname(file(Ctx, "ca.pem")), "secrets"),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    PasswordFile = filename:join(Dir, "password"),
    ok = file:write_file(PasswordFile, <<?PASSWORD/binary, "\n">>),

    %% A wrong password from password_file, over TLS: logins refused, logged, retried.
    start(tls_env(Ctx, [{password_file, PasswordFile}])),
    publish(<<"secret/1">>, <<"x">>),
    wait_for_failures(2),
    wait_log(Ctx, [<<"cannot connect">>, <<"logging in: connection closed by broker: 403 ACCESS_REFUSED">>]),
    Statuses = [stats(), sys:get_status(emqx_rabbitmq_hook_server), sys:get_status(emqx_rabbitmq_hook_sup),
                supervisor:get_childspec(emqx_rabbitmq_hook_sup, emqx_rabbitmq_hook_server)],
    %% A crash: the server's crash report, and the supervisor's report as it restarts it.
    Old = whereis(emqx_rabbitmq_hook_server),
    ok = sys:terminate(emqx_rabbitmq_hook_server, provoked_crash),
    ?assert(erh_test_rabbit:wait_for(fun() -> is_pid(whereis(emqx_rabbitmq_hook_server))
                                                  andalso whereis(emqx_rabbitmq_hook_server) =/= Old end,
                                     10000, 20)),
    wait_log(Ctx, [<<"emqx_rabbitmq_hook_server terminating">>, <<"provoked_crash">>]),
    wait_log(Ctx, [<<"child_terminated">>, <<"provoked_crash">>]),
    erh_test_rabbit:stop_plugin(),

    %% The same password given directly, to a server that is not there.
    Closed = "127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port()),
    start(env(Ctx, [{servers, [Closed]}, {password, ?PASSWORD}])),
    wait_for_failures(1),
    Unreachable = [stats(), sys:get_status(emqx_rabbitmq_hook_server)],
    erh_test_rabbit:stop_plugin(),

    %% Configurations that cannot start, each with the password somewhere in them.
    NulFile = filename:join(Dir, "nul"),
    ok = file:write_file(NulFile, <<?PASSWORD/binary, 0, "x">>),
    Refused = [erh_test_rabbit:start_plugin(env(Ctx, Overrides))
               || Overrides <- [[{password, <<?PASSWORD/binary, 0>>}],
                                [{password, binary_to_list(?PASSWORD) ++ [0]}],
                                [{password, {?PASSWORD}}],
                                [{password_file, NulFile}],
                                [{password, ?PASSWORD}, {servers, ["127.0.0.1:0"]}],
                                [{password, ?PASSWORD}, {tls_keyfile, file(Ctx, "client.key")}]]],
    [?assertMatch({error, _}, R) || R <- Refused],
    {ok, Good} = emqx_rabbitmq_hook_config:parse(erh_test_rabbit:plugin_env(Rabbit, [{password, ?PASSWORD}])),
    NifError = emqx_rabbitmq_hook_nif:start(Good#{confirm_window => 0}),
    ?assertEqual({error, {confirm_window, badarg}}, NifError),

    Logged = logged_text(Ctx),
    ?assert(length(Logged) > 5),
    Texts = Logged ++ [text(T) || T <- Statuses ++ Unreachable ++ Refused ++ [NifError]],
    %% The search finds the password where it is, in either way a term may print it ...
    ?assert(reveals(text(?PASSWORD))),
    ?assert(reveals(text(<<?PASSWORD/binary, 255>>))),
    ?assert(reveals(text(Good))),
    %% ... and nowhere here.
    ?assertEqual([], [T || T <- Texts, reveals(T)]).

%% The password as a person or ~w would print it: text, or the list of its byte values.
reveals(Text) ->
    Bytes = lists:join($,, [integer_to_list(B) || B <- binary_to_list(?PASSWORD)]),
    binary:match(Text, [?PASSWORD, iolist_to_binary(Bytes)]) =/= nomatch.

text(Term) ->
    unicode:characters_to_binary(io_lib:format("~tp~n~tw", [Term, Term])).

%%--------------------------------------------------------------------
%% Limits
%%--------------------------------------------------------------------

payloads_above_max_payload_bytes_arrive_as_size_and_flag(Ctx) ->
    start(env(Ctx, [{max_payload_bytes, 1000}])),
    AtLimit = binary:copy(<<"a">>, 1000),
    publish(<<"big/1">>, AtLimit),
    publish(<<"big/2">>, binary:copy(<<"b">>, 1001)),
    publish(<<"big/3">>, <<255, 0, (binary:copy(<<"c">>, 5000000))/binary>>),
    [#{json := J1}, #{json := J2}, #{json := J3}] = emqx_rabbitmq_hook_tests:receive_json(Ctx, 3),
    ?assertMatch(#{<<"payload">> := AtLimit, <<"payload_encoding">> := <<"plain">>}, J1),
    ?assertNot(maps:is_key(<<"payload_omitted">>, J1)),
    Omitted = [<<"payload">>, <<"payload_omitted">>, <<"payload_size">>, <<"payload_encoding">>],
    ?assertEqual(#{<<"payload">> => null, <<"payload_omitted">> => true, <<"payload_size">> => 1001},
                 maps:with(Omitted, J2)),
    ?assertEqual(#{<<"payload">> => null, <<"payload_omitted">> => true, <<"payload_size">> => 5000002},
                 maps:with(Omitted, J3)),
    ?assertMatch(#{<<"topic">> := <<"big/3">>, <<"qos">> := 1}, J3),
    ?assertMatch(#{payloads_omitted := 2, queued := 3, confirmed := 3}, stats()),
    %% The default bound is 1 MiB.
    erh_test_rabbit:stop_plugin(),
    start(env(Ctx, [])),
    publish(<<"big/4">>, binary:copy(<<"d">>, 1048576)),
    publish(<<"big/5">>, binary:copy(<<"e">>, 1048577)),
    [#{json := J4}, #{json := J5}] = emqx_rabbitmq_hook_tests:receive_json(Ctx, 2),
    ?assertEqual(1048576, byte_size(maps:get(<<"payload">>, J4))),
    ?assertEqual(#{<<"payload">> => null, <<"payload_omitted">> => true, <<"payload_size">> => 1048577},
                 maps:with(Omitted, J5)).

routing_keys_of_long_topics_and_client_ids_are_cut_at_255_bytes(Ctx) ->
    start(env(Ctx, [{routing_keys, #{message_publish => "msg.${topic}", client_connected => "conn_.${clientid}"}}])),
    %% "msg." and 250 bytes leave a 3-byte "€" across the limit; "conn_." (6 bytes) and 2-byte "é"s
    %% leave half an "é" at byte 255. Either cut must drop the whole character.
    Topic = <<(binary:copy(<<"abcd/">>, 50))/binary, "€/tail"/utf8>>,
    ClientId = binary:copy(<<"é"/utf8>>, 300),
    publish(Topic, <<"p">>),
    ok = emqx_rabbitmq_hook:on_client_connected(
           erh_test_emqx:clientinfo(emqx5, ClientId, <<"u">>),
           erh_test_emqx:conninfo(emqx5, ClientId, <<"u">>, 1700000000001), []),
    [#{json := P, routing_key := PKey}, #{json := C, routing_key := CKey, props := Props}] =
        emqx_rabbitmq_hook_tests:receive_json(Ctx, 2),
    ?assertEqual(<<"msg.", (binary:replace(binary:part(Topic, 0, 250), <<"/">>, <<".">>, [global]))/binary>>, PKey),
    ?assertEqual(<<"conn_.", (binary:copy(<<"é"/utf8>>, 124))/binary>>, CKey),
    [?assertEqual(Key, unicode:characters_to_binary(Key)) || Key <- [PKey, CKey]],
    %% The event itself keeps every byte.
    ?assertEqual(Topic, maps:get(<<"topic">>, P)),
    ?assertEqual(ClientId, maps:get(<<"clientid">>, C)),
    ?assertMatch(#{headers := #{<<"clientid">> := ClientId}}, Props).

%%--------------------------------------------------------------------
%% Capturing logs: a logger handler that sends every event to a collector
%%--------------------------------------------------------------------

log(Event, #{config := #{collector := Collector}}) ->
    Collector ! {log, Event},
    ok.

%% Log everything during the test, to the collector only: other handlers keep their level.
capture_logs() ->
    Collector = spawn(fun() -> collect([]) end),
    #{level := Primary} = logger:get_primary_config(),
    Others = [{Id, Level} || Id <- logger:get_handler_ids(), {ok, #{level := Level}} <- [logger:get_handler_config(Id)]],
    [logger:set_handler_config(Id, level, notice) || {Id, Level} <- Others, logger:compare_levels(Level, notice) =:= lt],
    ok = logger:add_handler(?HANDLER, ?MODULE, #{level => all, config => #{collector => Collector}}),
    ok = logger:set_primary_config(level, all),
    #{collector => Collector, primary => Primary, others => Others}.

stop_capture(#{collector := Collector, primary := Primary, others := Others}) ->
    logger:set_primary_config(level, Primary),
    logger:remove_handler(?HANDLER),
    [logger:set_handler_config(Id, level, Level) || {Id, Level} <- Others],
    exit(Collector, kill).

collect(Events) ->
    receive
        {log, Event} -> collect([Event | Events]);
        {get, From} -> From ! {events, lists:reverse(Events)}, collect(Events)
    end.

%% Every event so far, each as its formatted line and its raw term.
logged_text(#{logs := #{collector := Collector}}) ->
    Collector ! {get, self()},
    Events = receive {events, E} -> E after 5000 -> error(no_collector) end,
    [iolist_to_binary([format(Event), $\n, text(Event)]) || Event <- Events].

format(Event) ->
    unicode:characters_to_binary(
      logger_formatter:format(Event, #{single_line => true, depth => unlimited, chars_limit => unlimited,
                                       max_size => unlimited, template => [msg]})).

%% Wait for a log event that contains every one of Parts.
wait_log(Ctx, Parts) ->
    Logged = fun() -> [L || L <- logged_text(Ctx), lists:all(fun(P) -> binary:match(L, P) =/= nomatch end, Parts)] end,
    ?assertEqual({Parts, true}, {Parts, erh_test_rabbit:wait_for(fun() -> Logged() =/= [] end, 30000, 50)}).
