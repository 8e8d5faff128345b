%% Hook arguments shaped as EMQX 5 gives them to client.connected and client.disconnected
%% (DESIGN §3), for the presence tests: any client id, any username (or none), any times.
-module(erh_test_emqx).

-export([client/2, conn/4, disconn/5]).

client(ClientId, Username) ->
    #{clientid => ClientId, username => Username, peerhost => {10, 1, 2, 3}, sockport => 1883,
      protocol => mqtt, zone => default, listener => 'tcp:default', mountpoint => undefined,
      is_bridge => false, is_superuser => false, enable_authn => true, client_attrs => #{}}.

%% ConnInfo of a connection made at ConnectedAt (ms) from Port.
conn(ClientId, Username, ConnectedAt, Port) ->
    #{clientid => ClientId, username => Username, peername => {{10, 1, 2, 3}, Port},
      sockname => {{10, 0, 0, 1}, 1883}, socktype => tcp, conn_mod => emqx_connection,
      proto_name => <<"MQTT">>, proto_ver => 5, clean_start => true, keepalive => 30,
      expiry_interval => 0, receive_maximum => 32, conn_props => #{}, connected => true,
      connected_at => ConnectedAt}.

disconn(ClientId, Username, ConnectedAt, Port, DisconnectedAt) ->
    (conn(ClientId, Username, ConnectedAt, Port))#{connected => false, disconnected_at => DisconnectedAt}.
