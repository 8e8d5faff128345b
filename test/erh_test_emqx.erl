%% Hook arguments shaped exactly as EMQX 4 and EMQX 5 give them (DESIGN §3).
-module(erh_test_emqx).

-export([clientinfo/3, conninfo/4, disconninfo/5, message/5, message/6]).
%% Hook calls made the way EMQX makes them: a connection's from its channel process, publishes from
%% a process that never pauses.
-export([channel/0, in_channel/2, connect/4, disconnect/5, producer/1, stop_producer/1]).

clientinfo(emqx4, ClientId, Username) ->
    #{zone => external, protocol => mqtt, peerhost => {192, 168, 7, 21}, sockport => 1883,
      clientid => ClientId, username => Username, is_bridge => false, is_superuser => false,
      mountpoint => undefined, ws_cookie => undefined, peercert => nossl};
clientinfo(emqx5, ClientId, Username) ->
    (clientinfo(emqx4, ClientId, Username))#{listener => 'tcp:default', enable_authn => true,
                                             zone => default, client_attrs => #{}}.

conninfo(Version, ClientId, Username, ConnectedAt) ->
    Base = #{socktype => tcp, peername => {{192, 168, 7, 21}, 52311}, sockname => {{10, 0, 0, 1}, 1883},
             peercert => nossl, conn_mod => emqx_connection, proto_name => <<"MQTT">>,
             proto_ver => 4, clean_start => true, clientid => ClientId, username => Username,
             conn_props => undefined, connected => true, connected_at => ConnectedAt,
             keepalive => 60, receive_maximum => 32, expiry_interval => 0},
    case Version of
        emqx4 -> Base;
        emqx5 -> Base#{proto_ver => 5, expiry_interval => 7200, conn_props => #{}}
    end.

disconninfo(Version, ClientId, Username, ConnectedAt, DisconnectedAt) ->
    (conninfo(Version, ClientId, Username, ConnectedAt))#{disconnected_at => DisconnectedAt,
                                                          connected => false}.

message(Version, From, Username, Topic, Payload) ->
    message(Version, From, Username, Topic, Payload, #{retain => false, dup => false}).

message(Version, From, Username, Topic, Payload, Flags) ->
    Id = crypto:strong_rand_bytes(16),
    Headers = #{username => Username, peerhost => {192, 168, 7, 21}, proto_ver => 4},
    Record = {message, Id, 1, From, Flags, Headers, Topic, Payload, 1700000000123},
    case Version of
        emqx4 -> Record;
        emqx5 -> erlang:append_element(Record, #{})
    end.


%% A channel process: EMQX runs a connection's hooks in it, so its pid names the connection.
channel() ->
    spawn_link(fun Loop() ->
                       receive
                           {run, Fun, From} -> From ! {self(), Fun()}, Loop();
                           stop -> ok
                       end
               end).

in_channel(Channel, Fun) ->
    Channel ! {run, Fun, self()},
    receive {Channel, Result} -> Result after 10000 -> error(channel_timeout) end.

connect(Channel, ClientId, Username, At) ->
    ok = in_channel(Channel, fun() ->
                                     emqx_rabbitmq_hook:on_client_connected(
                                       clientinfo(emqx5, ClientId, Username),
                                       conninfo(emqx5, ClientId, Username, At), [])
                             end).

disconnect(Channel, ClientId, Username, At, OffAt) ->
    ok = in_channel(Channel, fun() ->
                                     emqx_rabbitmq_hook:on_client_disconnected(
                                       clientinfo(emqx5, ClientId, Username),
                                       {shutdown, takeovered},
                                       disconninfo(emqx5, ClientId, Username, At, OffAt), [])
                             end).

%% A process calling Publish(N) for N = 0, 1, ... without pause (but a millisecond every 20 calls),
%% whether the plugin runs or not, until stop_producer/1, which returns how many calls it made.
producer(Publish) ->
    spawn_link(fun() -> produce(Publish, 0) end).

stop_producer(Producer) ->
    Producer ! {stop, self()},
    receive {produced, Producer, N} -> N end.

produce(Publish, N) ->
    receive
        {stop, From} -> From ! {produced, self(), N}
    after 0 ->
            Publish(N),
            N rem 20 =:= 0 andalso timer:sleep(1),
            produce(Publish, N + 1)
    end.
