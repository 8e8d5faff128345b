%% A real RabbitMQ for tests and the demo: started by test/support/rabbitmq.sh in a temporary folder
%% on free loopback ports, and an AMQP client (amqp_client, shipped with Debian's rabbitmq-server)
%% to read what the plugin published.
-module(erh_test_rabbit).

-export([start/0, stop/1, restart/1, pause/1, resume/1, freeze/1, thaw/1, port/1, free_port/0]).
-export([start_tls/0, tls_port/1, tls_file/2, ctl/2, support_script/2, tmp_dir/0]).
-export([fetch/3, fetch_json/3, queue_length/2, queue_arguments/2]).
-export([plugin_env/2, start_plugin/1, stop_plugin/0, wait_for/3]).
%% An amqp_client channel to the node for Fun, closed afterwards (the benchmark deletes its queues).
-export([with_channel/2]).

-include_lib("amqp_client/include/amqp_client.hrl").

-type rabbit() :: #{dir := string(), port := inet:port_number(), dist := inet:port_number(),
                    epmd := inet:port_number(), tls_port => inet:port_number()}.

%%--------------------------------------------------------------------
%% The server
%%--------------------------------------------------------------------

-spec start() -> rabbit().
start() ->
    Rabbit = new(),
    boot(Rabbit),
    Rabbit.

%% A node that also listens for TLS, with certificates made for the occasion (see rabbitmq.sh):
%% tls_file/2 names them, e.g. tls_file(Rabbit, "ca.pem").
-spec start_tls() -> rabbit().
start_tls() ->
    Rabbit = (new())#{tls_port => free_port()},
    boot(Rabbit),
    Rabbit.

new() ->
    Dir = filename:join(tmp_dir(), "erh_rabbit_" ++ integer_to_list(erlang:unique_integer([positive]))
                        ++ "_" ++ os:getpid()),
    #{dir => Dir, port => free_port(), dist => free_port(), epmd => free_port()}.

-spec stop(rabbit()) -> ok.
stop(#{dir := Dir}) ->
    {0, _} = script(["stop", Dir]),
    os:cmd("rm -rf '" ++ Dir ++ "'"),
    ok.

%% Stop and start the same node, keeping its data: what is durable must still be there.
-spec restart(rabbit()) -> ok.
restart(Rabbit) ->
    pause(Rabbit),
    resume(Rabbit).

%% Stop the node, keeping its data, and start it again later with resume/1.
-spec pause(rabbit()) -> ok.
pause(#{dir := Dir}) ->
    {0, _} = script(["stop", Dir]),
    ok.

-spec resume(rabbit()) -> ok.
resume(Rabbit) ->
    boot(Rabbit).

%% Freeze the node's process (SIGSTOP): its sockets stay open, it answers nothing, sends no
%% heartbeat; thaw/1 lets it go on.
-spec freeze(rabbit()) -> ok.
freeze(#{dir := Dir}) -> erh_test_proc:signal(filename:join(Dir, "rabbitmq.pid"), "STOP").

-spec thaw(rabbit()) -> ok.
thaw(#{dir := Dir}) -> erh_test_proc:signal(filename:join(Dir, "rabbitmq.pid"), "CONT").

port(#{port := Port}) -> Port.

tls_port(#{tls_port := Port}) -> Port.

tls_file(#{dir := Dir}, Name) -> filename:join([Dir, "tls", Name]).

%% rabbitmqctl against the node; its output.
-spec ctl(rabbit(), [string()]) -> binary().
ctl(#{dir := Dir}, Args) ->
    {0, Output} = script(["ctl", Dir | Args]),
    Output.

boot(Rabbit = #{dir := Dir, port := Port, dist := Dist, epmd := Epmd}) ->
    Ports = [Port, Dist, Epmd | [P || P <- [maps:get(tls_port, Rabbit, none)], P =/= none]],
    case script(["start", Dir | [integer_to_list(P) || P <- Ports]]) of
        {0, _} -> ok;
        {Status, Output} -> error({rabbitmq_did_not_start, Status, Output})
    end.

script(Args) ->
    support_script("rabbitmq.sh", Args).

%% Run test/support/Name with Args: {ExitStatus, Output}.
support_script(Name, Args) ->
    Port = open_port({spawn_executable, filename:join(support_dir(), Name)},
                     [{args, Args}, exit_status, stderr_to_stdout, binary]),
    collect(Port, <<>>).

collect(Port, Acc) ->
    receive
        {Port, {data, Data}} -> collect(Port, <<Acc/binary, Data/binary>>);
        {Port, {exit_status, Status}} -> {Status, Acc}
    after 180000 -> error({support_script_timeout, Acc})
    end.

support_dir() ->
    Source = proplists:get_value(source, ?MODULE:module_info(compile)),
    filename:join(filename:dirname(Source), "support").

tmp_dir() ->
    case os:getenv("TMPDIR") of
        false -> "/tmp";
        Dir -> Dir
    end.

-spec free_port() -> inet:port_number().
free_port() ->
    {ok, Socket} = gen_tcp:listen(0, [{ip, {127, 0, 0, 1}}]),
    {ok, Port} = inet:port(Socket),
    gen_tcp:close(Socket),
    Port.

%%--------------------------------------------------------------------
%% Reading queues
%%--------------------------------------------------------------------

%% Take up to N messages from Queue, waiting at most TimeoutMs for them to arrive.
%% Each is #{props := map(), body := binary()}; they are acknowledged (removed).
-spec fetch(rabbit(), binary(), non_neg_integer()) -> [map()].
fetch(Rabbit, Queue, N) ->
    with_channel(Rabbit, fun(Channel) -> fetch_loop(Channel, Queue, N, deadline(15000), []) end).

%% The same, with the JSON body decoded into a map.
fetch_json(Rabbit, Queue, N) ->
    [M#{json => jsx:decode(Body, [return_maps])} || M = #{body := Body} <- fetch(Rabbit, Queue, N)].

queue_length(Rabbit, Queue) ->
    with_channel(Rabbit,
                 fun(Channel) ->
                         #'queue.declare_ok'{message_count = Count} =
                             amqp_channel:call(Channel, #'queue.declare'{queue = Queue, passive = true}),
                         Count
                 end).

%% The x-arguments a queue was declared with, as RabbitMQ keeps them: #{<<"x-queue-mode">> => <<"lazy">>}.
queue_arguments(Rabbit, Queue) ->
    Listed = jsx:decode(ctl(Rabbit, ["list_queues", "name", "arguments", "--formatter", "json"]), [return_maps]),
    [Arguments] = [A || #{<<"name">> := Name, <<"arguments">> := A} <- Listed, Name =:= Queue],
    maps:from_list([{Key, Value} || [Key, _Type, Value] <- Arguments]).

fetch_loop(_Channel, _Queue, 0, _Deadline, Acc) ->
    lists:reverse(Acc);
fetch_loop(Channel, Queue, N, Deadline, Acc) ->
    case amqp_channel:call(Channel, #'basic.get'{queue = Queue, no_ack = true}) of
        {#'basic.get_ok'{routing_key = Key}, #amqp_msg{props = Props, payload = Body}} ->
            fetch_loop(Channel, Queue, N - 1, Deadline, [#{routing_key => Key, props => props(Props),
                                                           body => Body} | Acc]);
        #'basic.get_empty'{} ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> lists:reverse(Acc);
                false -> timer:sleep(20), fetch_loop(Channel, Queue, N, Deadline, Acc)
            end
    end.

props(#'P_basic'{content_type = ContentType, delivery_mode = Mode, message_id = Id, timestamp = Ts,
                 type = Type, app_id = AppId, headers = Headers}) ->
    #{content_type => ContentType, delivery_mode => Mode, message_id => Id, timestamp => Ts,
      type => Type, app_id => AppId,
      headers => maps:from_list([{K, V} || {K, _Type, V} <- headers_list(Headers)])}.

headers_list(undefined) -> [];
headers_list(Headers) -> Headers.

with_channel(#{port := Port}, Fun) ->
    {ok, _} = application:ensure_all_started(amqp_client),
    {ok, Conn} = amqp_connection:start(#amqp_params_network{host = "127.0.0.1", port = Port}),
    {ok, Channel} = amqp_connection:open_channel(Conn),
    try Fun(Channel)
    after amqp_connection:close(Conn)
    end.

deadline(Ms) ->
    erlang:monotonic_time(millisecond) + Ms.

%%--------------------------------------------------------------------
%% Running the plugin
%%--------------------------------------------------------------------

%% Application env for a plugin that talks to Rabbit, with Overrides on top.
plugin_env(#{port := Port, dir := Dir}, Overrides) ->
    Spool = filename:join([Dir, "spool", integer_to_list(erlang:unique_integer([positive]))]),
    Base = #{servers => ["127.0.0.1:" ++ integer_to_list(Port)], reconnect_min_ms => 100,
             reconnect_max_ms => 1000, spool_dir => Spool},
    maps:to_list(maps:merge(Base, maps:from_list(Overrides))).

start_plugin(Env) ->
    application:load(emqx_rabbitmq_hook),
    [application:unset_env(emqx_rabbitmq_hook, K) || {K, _} <- application:get_all_env(emqx_rabbitmq_hook)],
    [application:set_env(emqx_rabbitmq_hook, K, V) || {K, V} <- Env],
    application:ensure_all_started(emqx_rabbitmq_hook).

stop_plugin() ->
    application:stop(emqx_rabbitmq_hook).

%% Poll Fun until it returns true, for at most TimeoutMs; returns true or false.
wait_for(Fun, TimeoutMs, Step) ->
    Deadline = deadline(TimeoutMs),
    wait_loop(Fun, Deadline, Step).

wait_loop(Fun, Deadline, Step) ->
    case Fun() of
        true -> true;
        false ->
            case erlang:monotonic_time(millisecond) > Deadline of
                true -> false;
                false -> timer:sleep(Step), wait_loop(Fun, Deadline, Step)
            end
    end.
