%% Hook arguments shaped exactly as EMQX 4 and EMQX 5 give them (DESIGN §3).
-module(erh_test_emqx).

-export([clientinfo/3, conninfo/4, disconninfo/5, message/5, message/6]).

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

