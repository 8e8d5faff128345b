%% The naive approach, as earlier community EMQX plugins publish to RabbitMQ: Erlang's amqp_client
%% with a pool of connections, and in the hook itself, for every event: encode the event as JSON,
%% open a channel, cast a persistent basic.publish, close the channel. No publisher confirms (they
%% had none): an event counts as delivered once the queue holds it.
-module(erh_bench_naive).

-export([start/3, stop/1, on_message_publish/2]).

-include_lib("amqp_client/include/amqp_client.hrl").

-define(POOL, 10). %% the connection pool those plugins configure

%% Connect the pool and declare the same topology the plugin declares (its default queue arguments).
start(#{port := Port}, Exchange, Queue) ->
    Conns = [begin
                 {ok, Conn} = amqp_connection:start(#amqp_params_network{host = "127.0.0.1", port = Port}),
                 Conn
             end || _ <- lists:seq(1, ?POOL)],
    {ok, Channel} = amqp_connection:open_channel(hd(Conns)),
    #'exchange.declare_ok'{} = amqp_channel:call(Channel, #'exchange.declare'{exchange = Exchange, type = <<"topic">>,
                                                                              durable = true}),
    Lazy = [{<<"x-queue-mode">>, longstr, <<"lazy">>}, {<<"x-queue-version">>, signedint, 2}],
    #'queue.declare_ok'{} = amqp_channel:call(Channel, #'queue.declare'{queue = Queue, durable = true,
                                                                        arguments = Lazy}),
    #'queue.bind_ok'{} = amqp_channel:call(Channel, #'queue.bind'{queue = Queue, exchange = Exchange,
                                                                  routing_key = <<"#">>}),
    amqp_channel:close(Channel),
    #{conns => list_to_tuple(Conns), exchange => Exchange}.

stop(#{conns := Conns}) ->
    [amqp_connection:close(Conn) || Conn <- tuple_to_list(Conns)],
    ok.

%% The hook, called in the client's process as EMQX would: it waits for the broker twice per event.
on_message_publish(Message, #{conns := Conns, exchange := Exchange}) ->
    {message, Id, Qos, From, Flags, Headers, Topic, Payload, Ts, _Extra} = Message,
    Json = jsx:encode(#{action => <<"message_publish">>, node => atom_to_binary(node(), utf8),
                        id => binary:encode_hex(Id), from_client_id => From,
                        from_username => maps:get(username, Headers, null), topic => Topic, qos => Qos,
                        retain => maps:get(retain, Flags, false), payload => Payload, ts => Ts}),
    Conn = element(erlang:phash2(self(), tuple_size(Conns)) + 1, Conns),
    {ok, Channel} = amqp_connection:open_channel(Conn),
    amqp_channel:cast(Channel, #'basic.publish'{exchange = Exchange, routing_key = <<"message.publish">>},
                      #amqp_msg{props = #'P_basic'{delivery_mode = 2, content_type = <<"application/json">>},
                                payload = Json}),
    amqp_channel:close(Channel),
    {ok, Message}.
