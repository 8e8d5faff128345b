%% Table-driven tests of the configuration parser: defaults, every accepted form, an invalid value
%% for every key, and error lines that name the key and never show the password.
-module(emqx_rabbitmq_hook_config_tests).

-include_lib("eunit/include/eunit.hrl").

-define(M, emqx_rabbitmq_hook_config).

default_map() ->
    #{servers => [{<<"127.0.0.1">>, 5672}],
      username => <<"guest">>,
      password => <<"guest">>,
      vhost => <<"/">>,
      exchange => <<"mqtt.events">>,
      exchange_type => <<"topic">>,
      queues => [{<<"mqtt.events">>, [<<"#">>]}],
      queue_type => <<"classic">>,
      queue_mode => <<"lazy">>,
      queue_version => 2,
      events => [client_connected, client_disconnected, message_publish],
      publish_topics => [<<"#">>],
      payload_encoding => auto,
      routing_keys => #{client_connected => <<"client.connected">>,
                        client_disconnected => <<"client.disconnected">>,
                        message_publish => <<"message.publish">>},
      node => atom_to_binary(node(), utf8),
      publishers => 1,
      confirm_window => 1024,
      buffer_events => 100000,
      heartbeat => 30,
      reconnect_min_ms => 500,
      reconnect_max_ms => 30000,
      connect_timeout_ms => 5000,
      drain_timeout_ms => 5000,
      unroutable_queue => <<"mqtt.events.unroutable">>,
      spool_dir => <<"data/emqx_rabbitmq_hook/spool">>,
      spool_max_bytes => 1073741824,
      spool_sync => interval,
      spool_sync_interval_ms => 1000,
      tls_enable => false,
      tls_cacertfile => <<>>,
      tls_certfile => <<>>,
      tls_keyfile => <<>>,
      tls_verify => true,
      tls_server_name => <<>>,
      auth_mechanism => plain,
      password_file => <<>>,
      max_payload_bytes => 1048576,
      presence => false,
      redis_server => {<<"127.0.0.1">>, 6379},
      redis_username => <<>>,
      redis_password => <<>>,
      redis_db => 0,
      redis_key_prefix => <<"mqtt:presence:">>,
      presence_buffer_events => 100000,
      presence_batch => 256,
      presence_node_ttl_ms => 30000,
      presence_tombstone_ttl_ms => 300000,
      presence_timeout_ms => 5000}.

%%--------------------------------------------------------------------
%% Defaults
%%--------------------------------------------------------------------

empty_env_parses_to_the_documented_defaults_test() ->
    ?assertEqual({ok, default_map()}, ?M:parse([])).

defaults_list_every_key_once_and_parse_to_the_same_map_test() ->
    Keys = [K || {K, _} <- ?M:defaults()],
    ?assertEqual(lists:sort(maps:keys(default_map())), lists:sort(Keys)),
    ?assertEqual(length(Keys), length(lists:usort(Keys))),
    ?assertEqual({ok, default_map()}, ?M:parse(?M:defaults())).

unknown_keys_are_ignored_test() ->
    ?assertEqual({ok, default_map()},
                 ?M:parse([{included_applications, []}, {some_future_key, "x"}, {42, bad}])).

%%--------------------------------------------------------------------
%% Accepted forms: {Key, Given, Normalized}
%%--------------------------------------------------------------------

accepted() ->
    [{servers, ["rabbit:5673"], [{<<"rabbit">>, 5673}]},
     {servers, [<<"rabbit:5673">>], [{<<"rabbit">>, 5673}]},
     {servers, "rabbit:5673", [{<<"rabbit">>, 5673}]},
     {servers, <<"rabbit">>, [{<<"rabbit">>, 5672}]},
     {servers, ["[::1]:5671", "[fe80::1]", "a:1", <<"b:65535">>],
      [{<<"::1">>, 5671}, {<<"fe80::1">>, 5672}, {<<"a">>, 1}, {<<"b">>, 65535}]},
     {username, "user", <<"user">>},
     {username, <<"user">>, <<"user">>},
     {username, "", <<>>},
     {password, "s3cret", <<"s3cret">>},
     {password, <<255, 254>>, <<255, 254>>},  % bytes, UTF-8 not required
     {password, [233], <<195, 169>>},
     {vhost, "/prod", <<"/prod">>},
     {vhost, <<"prod">>, <<"prod">>},
     {exchange, "ex", <<"ex">>},
     {exchange, <<"ex">>, <<"ex">>},
     {exchange, "événements", <<"événements"/utf8>>},
     {exchange, lists:duplicate(255, $x), list_to_binary(lists:duplicate(255, $x))},
     {exchange_type, topic, <<"topic">>},
     {exchange_type, "direct", <<"direct">>},
     {exchange_type, <<"fanout">>, <<"fanout">>},
     {queues, [], []},
     {queues, [{"q1", ["a.#", <<"b">>]}, {<<"q2">>, []}],
      [{<<"q1">>, [<<"a.#">>, <<"b">>]}, {<<"q2">>, []}]},
     {queues, [{"q", [""]}], [{<<"q">>, [<<>>]}]},
     {queue_type, quorum, <<"quorum">>},
     {queue_type, "classic", <<"classic">>},
     {queue_type, <<"quorum">>, <<"quorum">>},
     {queue_mode, default, <<"default">>},
     {queue_mode, "lazy", <<"lazy">>},
     {queue_version, 0, 0},
     {queue_version, 1, 1},
     {events, [], []},
     {events, [message_publish, "client_connected", message_publish, <<"client_connected">>],
      [client_connected, message_publish]},
     {events, [<<"client_disconnected">>], [client_disconnected]},
     {publish_topics, [], []},
     {publish_topics, ["a/+/c", <<"a/#">>, "+", "/", "$SYS/#", "a/b"],
      [<<"a/+/c">>, <<"a/#">>, <<"+">>, <<"/">>, <<"$SYS/#">>, <<"a/b">>]},
     {payload_encoding, base64, base64},
     {payload_encoding, "auto", auto},
     {payload_encoding, <<"base64">>, base64},
     {routing_keys, #{message_publish => "t.${topic}"},
      #{client_connected => <<"client.connected">>,
        client_disconnected => <<"client.disconnected">>,
        message_publish => <<"t.${topic}">>}},
     {routing_keys, [{client_connected, <<"c.${clientid}.${username}">>},
                     {"client_disconnected", "d"}, {<<"message_publish">>, ""}],
      #{client_connected => <<"c.${clientid}.${username}">>,
        client_disconnected => <<"d">>,
        message_publish => <<>>}},
     {routing_keys, [], maps:get(routing_keys, default_map())},
     {routing_keys, #{client_connected => "a$b{c}"},
      (maps:get(routing_keys, default_map()))#{client_connected => <<"a$b{c}">>}},
     {node, "emqx@host", <<"emqx@host">>},
     {node, <<"emqx@host">>, <<"emqx@host">>},
     {publishers, 16, 16},
     {confirm_window, 1, 1},
     {buffer_events, 100000000, 100000000},
     {heartbeat, 0, 0},
     {reconnect_min_ms, 10, 10},
     {connect_timeout_ms, 100, 100},
     {drain_timeout_ms, 0, 0},
     {unroutable_queue, "", <<>>},
     {unroutable_queue, <<"dead">>, <<"dead">>},
     {spool_dir, "/var/spool/emqx", <<"/var/spool/emqx">>},
     {spool_max_bytes, 0, 0},
     {spool_max_bytes, 1 bsl 50, 1 bsl 50},
     {spool_sync, always, always},
     {spool_sync, "never", never},
     {spool_sync_interval_ms, 1, 1},
     {tls_enable, true, true},
     {tls_verify, false, false},
     {tls_cacertfile, "", <<>>},
     {tls_server_name, "rabbit.example.com", <<"rabbit.example.com">>},
     {auth_mechanism, "plain", plain},
     {password_file, <<>>, <<>>},
     {max_payload_bytes, 0, 0},
     {max_payload_bytes, 268435456, 268435456},
     {presence, true, true},
     {presence, "true", true},
     {presence, <<"false">>, false},
     {redis_server, "redis.local", {<<"redis.local">>, 6379}},
     {redis_server, <<"10.0.0.5:6380">>, {<<"10.0.0.5">>, 6380}},
     {redis_server, "[::1]", {<<"::1">>, 6379}},
     {redis_username, "emqx", <<"emqx">>},
     {redis_password, <<255, 1>>, <<255, 1>>},
     {redis_db, 15, 15},
     {redis_key_prefix, "", <<>>},
     {redis_key_prefix, "iot:{presence}:", <<"iot:{presence}:">>},
     {presence_buffer_events, 1, 1},
     {presence_batch, 10000, 10000},
     {presence_node_ttl_ms, 1000, 1000},
     {presence_tombstone_ttl_ms, 86400000, 86400000},
     {presence_timeout_ms, 100, 100}].

accepted_forms_normalize_test_() ->
    [{lists:flatten(io_lib:format("~p = ~0tp", [Key, Given])),
      ?_assertMatch({ok, #{Key := Normalized}}, ?M:parse([{Key, Given}]))}
     || {Key, Given, Normalized} <- accepted()].

%% RabbitMQ's own exchanges can be named with their own type; names of queues cannot start with amq.
rabbitmq_own_exchanges_go_with_their_type_test() ->
    [?assertMatch({ok, #{exchange := Name, exchange_type := Type}},
                  ?M:parse([{exchange, Name}, {exchange_type, binary_to_atom(Type)}]))
     || {Name, Type} <- [{<<"amq.topic">>, <<"topic">>}, {<<"amq.direct">>, <<"direct">>},
                         {<<"amq.fanout">>, <<"fanout">>}]],
    ?assertEqual({error, {exchange_type, {type_of, <<"amq.direct">>, <<"direct">>}}},
                 ?M:parse([{exchange, "amq.direct"}])),
    ?assertEqual(<<"invalid value for exchange_type: the exchange amq.direct is RabbitMQ's own, of type direct: "
                   "it must be direct">>,
                 ?M:format_error({exchange_type, {type_of, <<"amq.direct">>, <<"direct">>}})),
    ?assertMatch({error, {queues, {reserved_queue, <<"amq.q">>}}}, ?M:parse([{queues, [{"amq.q", ["#"]}]}])),
    ?assertMatch({ok, #{queues := [{<<"Amq.q">>, _}], unroutable_queue := <<"amqp.dead">>}},
                 ?M:parse([{queues, [{"Amq.q", ["#"]}]}, {unroutable_queue, "amqp.dead"}])).

reconnect_max_may_equal_min_test() ->
    ?assertMatch({ok, #{reconnect_min_ms := 2000, reconnect_max_ms := 2000}},
                 ?M:parse([{reconnect_min_ms, 2000}, {reconnect_max_ms, 2000}])).

%%--------------------------------------------------------------------
%% Rejected values: {Key, Given}
%%--------------------------------------------------------------------

rejected() ->
    [{servers, []},
     {servers, ""},
     {servers, "localhost:99999"},
     {servers, ["localhost:0"]},
     {servers, ["host:"]},
     {servers, ["host:12a"]},
     {servers, [":5672"]},
     {servers, ["::1"]},
     {servers, ["[::1"]},
     {servers, ["[]:5672"]},
     {servers, ["[localhost]:5672"]},
     {servers, ["bad host:5672"]},
     {servers, [<<"host", 0, ":5672">>]},
     {servers, [host]},
     {servers, host},
     {username, user},
     {username, <<"a", 0>>},
     {username, <<255>>},
     {password, secret},
     {password, <<"abc", 0, "def">>},
     {password, 12345},
     {vhost, ""},
     {vhost, 1},
     {exchange, ""},
     {exchange, <<>>},
     {exchange, lists:duplicate(256, $x)},
     {exchange, "a\0b"},
     {exchange, ["ex"]},
     {exchange, "amq.events"},
     {exchange, "amq.headers"},
     {exchange_type, headers},
     {exchange_type, "Topic"},
     {exchange_type, 1},
     {queues, {"q", ["#"]}},
     {queues, [{"", ["#"]}]},
     {queues, [{"q", "#"}]},
     {queues, [{"q", [1]}]},
     {queues, [{"q", [lists:duplicate(256, $k)]}]},
     {queues, ["q"]},
     {queues, [{"q", ["#"]} | tail]},
     {queues, [{lists:duplicate(256, $q), []}]},
     {queues, [{"ok", ["#"]}, {"amq.gen-1", ["#"]}]},
     {queue_type, stream},
     {queue_type, "quorums"},
     {queue_mode, eager},
     {queue_mode, 1},
     {queue_version, 3},
     {queue_version, -1},
     {queue_version, "2"},
     {events, [client_connected, client_subscribe]},
     {events, client_connected},
     {events, "client_connected"},
     {events, [[]]},
     {publish_topics, "#"},
     {publish_topics, [""]},
     {publish_topics, ["a/#/b"]},
     {publish_topics, ["a#"]},
     {publish_topics, ["a/b+"]},
     {publish_topics, ["a/\0"]},
     {publish_topics, [lists:duplicate(65536, $a)]},
     {publish_topics, [<<255>>]},
     {payload_encoding, plain},
     {payload_encoding, "Base64"},
     {routing_keys, "x"},
     {routing_keys, [x]},
     {routing_keys, #{client_subscribe => "x"}},
     {routing_keys, #{message_publish => "${payload}"}},
     {routing_keys, #{message_publish => "a.${topic"}},
     {routing_keys, #{message_publish => "${topic}.${"}},
     {routing_keys, #{message_publish => <<"a", 0>>}},
     {routing_keys, #{message_publish => 1}},
     {routing_keys, #{message_publish => lists:duplicate(256, $r)}},
     {node, ""},
     {node, 'emqx@host'},
     {publishers, 0},
     {publishers, 17},
     {publishers, "1"},
     {confirm_window, 0},
     {confirm_window, 65536},
     {unroutable_queue, lists:duplicate(256, $u)},
     {unroutable_queue, dead},
     {unroutable_queue, "amq.unroutable"},
     {spool_dir, ""},
     {spool_dir, "a\0b"},
     {spool_max_bytes, -1},
     {spool_max_bytes, "1GB"},
     {spool_sync, sometimes},
     {spool_sync_interval_ms, 0},
     {buffer_events, 0},
     {buffer_events, 100000001},
     {heartbeat, -1},
     {heartbeat, 3601},
     {heartbeat, 1.5},
     {reconnect_min_ms, 9},
     {reconnect_min_ms, 600001},
     {reconnect_max_ms, 499},  % below the default reconnect_min_ms
     {reconnect_max_ms, 3600001},
     {reconnect_max_ms, infinity},
     {connect_timeout_ms, 99},
     {connect_timeout_ms, 600001},
     {drain_timeout_ms, -1},
     {drain_timeout_ms, 3600001},
     {tls_enable, "true"},
     {tls_cacertfile, "/nonexistent/ca.pem"},
     {tls_certfile, 1},
     {tls_keyfile, "/nonexistent/client.key"},
     {tls_verify, 1},
     {tls_server_name, lists:duplicate(256, $n)},
     {auth_mechanism, amqplain},
     {auth_mechanism, external},  % without TLS and a client certificate
     {password_file, "/nonexistent/password"},
     {password_file, password},
     {max_payload_bytes, -1},
     {max_payload_bytes, 268435457},
     {presence, yes},
     {presence, 1},
     {redis_server, ["127.0.0.1:6379"]},
     {redis_server, "redis:0"},
     {redis_server, "::1"},
     {redis_username, <<"a", 0>>},
     {redis_password, <<"pw", 0>>},
     {redis_password, pw},
     {redis_db, -1},
     {redis_db, 65536},
     {redis_key_prefix, lists:duplicate(256, $p)},
     {redis_key_prefix, <<255>>},
     {presence_buffer_events, 0},
     {presence_batch, 0},
     {presence_batch, 10001},
     {presence_node_ttl_ms, 999},
     {presence_tombstone_ttl_ms, 999},
     {presence_timeout_ms, 99},
     {routing_keys, #{client_connected => "c.${topic}"}},
     {node, lists:duplicate(201, $n)}].

rejected_values_name_their_key_test_() ->
    [{lists:flatten(io_lib:format("~p = ~0tP", [Key, Given, 6])),
      fun() ->
              Result = ?M:parse([{Key, Given}]),
              ?assertMatch({error, {Key, _}}, Result),
              {error, Error} = Result,
              Line = ?M:format_error(Error),
              ?assert(is_binary(Line)),
              ?assertEqual(nomatch, binary:match(Line, <<"\n">>)),
              ?assertNotEqual(nomatch, binary:match(Line, atom_to_binary(Key, utf8)))
      end}
     || {Key, Given} <- rejected()].

every_key_has_a_rejected_value_test() ->
    Keys = [K || {K, _} <- ?M:defaults()],
    ?assertEqual([], Keys -- [K || {K, _} <- rejected()]).

reconnect_max_below_min_names_the_min_test() ->
    Env = [{reconnect_min_ms, 1000}, {reconnect_max_ms, 999}],
    ?assertEqual({error, {reconnect_max_ms, {less_than, 999, reconnect_min_ms, 1000}}}, ?M:parse(Env)),
    {error, Error} = ?M:parse(Env),
    ?assertEqual(<<"invalid value for reconnect_max_ms: 999 is less than reconnect_min_ms (1000)">>,
                 ?M:format_error(Error)).

the_first_invalid_key_in_table_order_is_reported_test() ->
    ?assertMatch({error, {servers, _}}, ?M:parse([{heartbeat, -1}, {servers, []}])).

%%--------------------------------------------------------------------
%% Error lines
%%--------------------------------------------------------------------

server_error_line_test() ->
    {error, Error} = ?M:parse([{servers, ["localhost:99999"]}]),
    ?assertEqual({servers, {bad_server, "localhost:99999"}}, Error),
    Line = ?M:format_error(Error),
    ?assertMatch(<<"invalid value for servers: \"localhost:99999\" is not host:port with a port 1..65535",
                   _/binary>>, Line).

password_value_never_appears_test_() ->
    [password_never_appears(Key) || Key <- [password, redis_password]].

password_never_appears(Key) ->
    Secrets = [{<<"hunter2", 0>>, <<"hunter2">>},
               {"hunter2\0", <<"hunter2">>},
               {hunter2, <<"hunter2">>},
               {424242, <<"424242">>},
               {{"hunter2"}, <<"hunter2">>},
               {["hunter2"], <<"hunter2">>}],
    [?_test(begin
                {error, {Key, _} = Error} = ?M:parse([{Key, Secret}]),
                Line = ?M:format_error(Error),
                ?assertNotEqual(nomatch, binary:match(Line, atom_to_binary(Key, utf8))),
                ?assertEqual(nomatch, binary:match(Line, Shown))
            end)
     || {Secret, Shown} <- Secrets]
    ++ [?_assertEqual(nomatch, binary:match(iolist_to_binary(io_lib:format("~tp ~tw", [Error, Error])),
                                            <<"hunter2">>))
        || Secret <- [<<"hunter2", 0>>, "hunter2\0", hunter2, {"hunter2"}, ["hunter2"]],
           {error, Error} <- [?M:parse([{Key, Secret}])]]
    ++ [?_assertEqual(nomatch, binary:match(?M:format_error({Key, Reason}), <<"hunter2">>))
        || Reason <- [{not_text, hunter2}, {nul_byte, <<"hunter2", 0>>}, {something, "hunter2"}]].

%% Every reason shape renders, and so do reasons the parser does not make (the NIF's, for one).
every_reason_renders_test_() ->
    Reasons = [{not_text, 1}, {nul_byte, "a\0"}, {not_utf8, <<255>>},
               {bad_length, "", 1, 255}, {bad_length, "", 1, infinity},
               {not_a_list, x}, empty_list, {bad_server, "h:0"}, {bad_queue, q},
               {not_one_of, x, [a, b]}, {bad_topic_filter, "a#"}, {not_a_map, x},
               {bad_template, "${x}"}, {no_topic, client_connected, "c.${topic}"}, {not_integer, 1.5}, {out_of_range, 0, 1, 16},
               {less_than, 1, reconnect_min_ms, 500},
               secret_not_text, secret_nul_byte, {not_boolean, 1}, {unreadable, <<"/x">>, enoent},
               {not_pem, <<"/x">>, certificate}, {not_pem, <<"/x">>, private_key}, {encrypted_key, <<"/x">>},
               {needs, tls_certfile}, external_needs_certificate, {empty_file, <<"/x">>},
               {reserved_queue, <<"amq.q">>}, {reserved_exchange, "amq.x"},
               {type_of, <<"amq.topic">>, <<"topic">>},
               {nul_in_file, <<"/x">>},
               badarg, enomem, {weird, make_ref(), self()}],
    [?_test(begin
                Line = ?M:format_error({exchange, Reason}),
                ?assertMatch(<<"invalid value for exchange: ", _/binary>>, Line),
                ?assertEqual(nomatch, binary:match(Line, <<"\n">>))
            end)
     || Reason <- Reasons]
    ++ [?_assertMatch(<<_/binary>>, ?M:format_error(not_a_pair))].

long_values_are_cut_in_error_lines_test() ->
    {error, Error} = ?M:parse([{publish_topics, [lists:duplicate(70000, $a)]}]),
    ?assert(byte_size(?M:format_error(Error)) < 300),
    {error, Error2} = ?M:parse([{exchange, <<255, 0:800000>>}]),
    ?assert(byte_size(?M:format_error(Error2)) < 600).

%% A list of numbers where a list of strings belongs is reported element by element, not as a
%% string that is "not a list".
non_text_elements_are_named_test() ->
    ?assertEqual({error, {queues, {not_text, 1}}}, ?M:parse([{queues, [{"q", [1]}]}])),
    ?assertEqual({error, {publish_topics, {not_a_list, "#"}}}, ?M:parse([{publish_topics, "#"}])),
    ?assertEqual(<<"invalid value for exchange: \"\" is 0 bytes long, must be 1..255">>,
                 ?M:format_error(element(2, ?M:parse([{exchange, ""}])))),
    ?assertEqual(<<"invalid value for username: <<255>> is not valid UTF-8">>,
                 ?M:format_error(element(2, ?M:parse([{username, <<255>>}])))).

%%--------------------------------------------------------------------
%% Files named by the configuration
%%--------------------------------------------------------------------

%% Run Fun(Dir) in a fresh temporary folder.
with_dir(Fun) ->
    Dir = filename:join(case os:getenv("TMPDIR") of false -> "/tmp"; T -> T end,
                        "erh_config_" ++ integer_to_list(erlang:unique_integer([positive]))),
    ok = filelib:ensure_dir(filename:join(Dir, "x")),
    try Fun(Dir)
    after file:del_dir_r(Dir)
    end.

write(Dir, Name, Content) ->
    Path = filename:join(Dir, Name),
    ok = file:write_file(Path, Content),
    list_to_binary(Path).

password_file_replaces_password_without_one_trailing_newline_test() ->
    with_dir(fun(Dir) ->
        [?assertMatch({ok, #{password := Expected, password_file := Path}},
                      ?M:parse([{password, "ignored"}, {password_file, Path}]))
         || {Content, Expected} <- [{<<"s3cret\n">>, <<"s3cret">>}, {<<"s3cret\r\n">>, <<"s3cret">>},
                                    {<<"s3cret">>, <<"s3cret">>}, {<<"s3cret \n\n">>, <<"s3cret \n">>},
                                    {<<255, 1, "\n">>, <<255, 1>>}],
            Path <- [write(Dir, "password", Content)]]
    end).

password_file_errors_name_the_key_and_not_the_content_test() ->
    with_dir(fun(Dir) ->
        Empty = write(Dir, "empty", <<"\n">>),
        Nul = write(Dir, "nul", <<"hunter2", 0, "\n">>),
        Missing = filename:join(Dir, "missing"),
        [begin
             {error, {password_file, Reason} = Error} = ?M:parse([{password_file, Path}]),
             ?assertEqual(Expected, element(1, Reason)),
             Line = ?M:format_error(Error),
             ?assertMatch(<<"invalid value for password_file: ", _/binary>>, Line),
             [?assertEqual(nomatch, binary:match(Text, <<"hunter2">>))
              || Text <- [Line, iolist_to_binary(io_lib:format("~tp ~tw", [Error, Error]))]]
         end || {Path, Expected} <- [{Empty, empty_file}, {Nul, nul_in_file}, {Missing, unreadable}]]
    end).

tls_files_must_be_readable_pem_of_the_right_kind_test() ->
    Cert = <<"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n">>,
    Key = <<"-----BEGIN PRIVATE KEY-----\nMIGH\n-----END PRIVATE KEY-----\n">>,
    EcKey = <<"-----BEGIN EC PRIVATE KEY-----\nMHcC\n-----END EC PRIVATE KEY-----\n">>,
    Encrypted = <<"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIHs\n-----END ENCRYPTED PRIVATE KEY-----\n">>,
    OldEncrypted = <<"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nMIIE\n-----END RSA PRIVATE KEY-----\n">>,
    with_dir(fun(Dir) ->
        [C, K, E, X, O, N] = [write(Dir, Name, Content)
                              || {Name, Content} <- [{"c.pem", Cert}, {"k.pem", Key}, {"ec.pem", EcKey},
                                                     {"x.pem", Encrypted}, {"o.pem", OldEncrypted},
                                                     {"n.pem", <<"not PEM">>}]],
        ?assertMatch({ok, #{tls_cacertfile := C, tls_certfile := C, tls_keyfile := K}},
                     ?M:parse([{tls_cacertfile, C}, {tls_certfile, C}, {tls_keyfile, K}])),
        ?assertMatch({ok, #{tls_keyfile := E}}, ?M:parse([{tls_certfile, C}, {tls_keyfile, E}])),
        ?assertMatch({ok, #{auth_mechanism := external}},
                     ?M:parse([{tls_enable, true}, {tls_certfile, C}, {tls_keyfile, K}, {auth_mechanism, external}])),
        ?assertEqual({error, {tls_cacertfile, {not_pem, N, certificate}}}, ?M:parse([{tls_cacertfile, N}])),
        ?assertEqual({error, {tls_certfile, {not_pem, K, certificate}}}, ?M:parse([{tls_certfile, K}])),
        ?assertEqual({error, {tls_keyfile, {not_pem, C, private_key}}},
                     ?M:parse([{tls_certfile, C}, {tls_keyfile, C}])),
        [?assertEqual({error, {tls_keyfile, {encrypted_key, P}}}, ?M:parse([{tls_certfile, C}, {tls_keyfile, P}]))
         || P <- [X, O]],
        ?assertEqual({error, {tls_keyfile, {needs, tls_certfile}}}, ?M:parse([{tls_certfile, C}])),
        ?assertEqual({error, {tls_keyfile, {needs, tls_certfile}}}, ?M:parse([{tls_keyfile, K}])),
        ?assertEqual({error, {auth_mechanism, external_needs_certificate}},
                     ?M:parse([{tls_enable, true}, {auth_mechanism, external}]))
    end).

redact_hides_every_secret_in_configs_and_errors_test() ->
    {ok, Config} = ?M:parse([{password, "hunter2"}]),
    ?assertEqual(nomatch, binary:match(iolist_to_binary(io_lib:format("~tp", [?M:redact(Config)])), <<"hunter2">>)),
    ?assertEqual({password, hidden}, ?M:redact({password, {nul_byte, "hunter2"}})).
