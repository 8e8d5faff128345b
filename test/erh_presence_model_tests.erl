%% Model-based test of the presence registry: two plugin instances act as two EMQX nodes (two NIF
%% instances with different node names, one Redis), and a seeded random run drives them with the
%% events EMQX would produce: connects, disconnects, flapping in one millisecond, takeovers on the
%% same node and to the other node (with and without a disconnect of the old connection), delayed
%% and reordered delivery, a node killed without any disconnect and started again, another killed
%% for good, and Redis stopped for longer than the liveness TTL while events keep coming. The model
%% keeps the ground truth: which connection of each client is alive. Once the events have settled,
%% the registry must give that answer for every client, through the read script and in the online set.
%%
%% PRESENCE_SEED=N reruns a given seed; the seed, the figures and the mismatches are printed.
-module(erh_presence_model_tests).

-include_lib("eunit/include/eunit.hrl").

-define(CLIENTS, 2000).
-define(EVENTS, 52000).
-define(NODE_TTL_MS, 3000).
%% Events per second at most, both nodes together: a pace the presence threads follow on a busy
%% machine, so that node b's small queue overflows only while Redis is away.
-define(RATE, 5000).
-define(PACE_EVERY, 250).
-define(NAMES, #{a => <<"emqx-a@model">>, b => <<"emqx-b@model">>}).

model_test_() ->
    {setup, fun erh_test_redis:start/0, fun erh_test_redis:stop/1,
     fun(Redis) ->
             {timeout, 600, {"registry equals the model after random interleavings", fun() -> run(Redis) end}}
     end}.

%%--------------------------------------------------------------------
%% The run
%%--------------------------------------------------------------------

run(Redis) ->
    Seed = seed(),
    rand:seed(exsss, {Seed, Seed bxor 16#5bd1e995, Seed + 1}),
    Started = erlang:monotonic_time(millisecond),
    Prefix = <<"model", (integer_to_binary(Seed))/binary, ":">>,
    S0 = #{redis => Redis, prefix => Prefix, step => 0, submitted => 0, clock => erlang:system_time(millisecond),
           conns => 0, clients => clients(), nodes => #{}, pending_connects => #{}},
    S1 = start_node(b, start_node(a, S0)),
    %% The scenario, by share of the events: node a dies at 30% and comes back at 45%; Redis is
    %% away from 58% to 68% (longer than the liveness TTL); node b dies for good at 90%.
    Plan = [{0.30, fun kill_a/1}, {0.45, fun(S) -> start_node(a, S) end}, {0.58, fun redis_down/1},
            {0.68, fun redis_up/1}, {0.90, fun(S) -> kill(b, S) end}],
    S2 = steps(Plan, S1),
    S3 = release_all(S2),
    settle(S3),
    {Checked, Mismatches} = check(S3),
    Seconds = (erlang:monotonic_time(millisecond) - Started) / 1000,
    Counters = counters(S3),
    io:format(user, "~npresence model: seed ~b, clients ~b, events ~b, mismatches ~b, ~.1f s~n"
                    "  (~ts)~n",
              [Seed, ?CLIENTS, maps:get(submitted, S3), length(Mismatches), Seconds, Counters]),
    [io:format(user, "  mismatch: ~0tp~n", [M]) || M <- lists:sublist(Mismatches, 10)],
    stop_nodes(S3),
    ?assertEqual(?CLIENTS, Checked),
    ?assert(maps:get(submitted, S3) >= 50000),
    ?assertEqual([], Mismatches).

seed() ->
    case os:getenv("PRESENCE_SEED") of
        false -> rand:uniform(1 bsl 32);
        Text -> list_to_integer(Text)
    end.

%% Client ids of every kind: plain, with spaces, ':', '{', bytes that are not UTF-8, long ones.
clients() ->
    maps:from_list([{I, #{id => client_id(I), username => username(I), live => none, last_at => 0}}
                    || I <- lists:seq(1, ?CLIENTS)]).

client_id(1) -> binary:copy(<<"x">>, 65535);
client_id(I) ->
    N = integer_to_binary(I),
    case I rem 7 of
        0 -> <<"dev ", N/binary, " with spaces">>;
        1 -> <<"tenant:", N/binary, ":dev">>;
        2 -> <<"{", N/binary, "}">>;
        3 -> <<255, 0, N/binary, 200>>;
        4 -> <<(binary:copy(<<"long">>, 300))/binary, N/binary>>;
        _ -> <<"dev-", N/binary>>
    end.

username(I) when I rem 5 =:= 0 -> undefined;
username(I) -> <<"user-", (integer_to_binary(I rem 97))/binary>>.

steps(Plan, S = #{submitted := Submitted}) when Submitted >= ?EVENTS ->
    lists:foldl(fun({_, Action}, Acc) -> Action(Acc) end, S, Plan);
steps(Plan, S0 = #{submitted := Submitted}) ->
    {Due, Later} = lists:partition(fun({Share, _}) -> Submitted >= Share * ?EVENTS end, Plan),
    S1 = lists:foldl(fun({_, Action}, Acc) -> Action(Acc) end, pace(S0), Due),
    S2 = release(S1),
    S3 = step(S2#{step := maps:get(step, S2) + 1, clock := maps:get(clock, S2) + rand:uniform(3) - 1}),
    steps(Later, S3).

pace(S = #{submitted := Submitted}) ->
    Now = erlang:monotonic_time(millisecond),
    case maps:get(paced, S, {0, Now}) of
        {Mark, Since} when Submitted - Mark >= ?PACE_EVERY ->
            Wait = Since + (Submitted - Mark) * 1000 div ?RATE - Now,
            timer:sleep(max(0, Wait)),
            S#{paced => {Submitted, erlang:monotonic_time(millisecond)}};
        Paced ->
            S#{paced => Paced}
    end.

%%--------------------------------------------------------------------
%% One random operation on one random client
%%--------------------------------------------------------------------

step(S = #{clients := Clients}) ->
    I = rand:uniform(?CLIENTS),
    Client = maps:get(I, Clients),
    case {live(Client, S), alive_nodes(S)} of
        {_, []} -> S;
        {none, Nodes} ->
            Node = pick(Nodes),
            case rand:uniform(10) of
                1 -> flap(I, Node, S);
                _ -> new_conn(I, Node, S)
            end;
        {Conn = #{node := Node}, Nodes} ->
            case rand:uniform(20) of
                R when R =< 7 -> end_conn(I, Conn, disconnect, S);
                R when R =< 10 -> takeover(I, Conn, Node, S);
                R when R =< 17 -> takeover(I, Conn, other(Node, Nodes), S);
                _ -> flap(I, Node, end_conn(I, Conn, disconnect, S))
            end
    end.

%% The client's live connection; one on a dead node died with it.
live(#{live := none}, _) -> none;
live(#{live := Conn = #{node := Node, gen := Gen}}, #{nodes := Nodes}) ->
    case maps:get(Node, Nodes) of
        #{alive := true, gen := Gen} -> Conn;
        _ -> none
    end.

alive_nodes(#{nodes := Nodes}) ->
    [N || {N, #{alive := true}} <- maps:to_list(Nodes)].

pick(List) -> lists:nth(rand:uniform(length(List)), List).

%% The other node when it is alive, else the same one.
other(Node, Alive) ->
    case Alive -- [Node] of
        [] -> Node;
        Others -> pick(Others)
    end.

%% A new connection takes over: EMQX may or may not tell about the old one (takeovered/discarded),
%% and when it does, the disconnect is often handled after the new connect.
takeover(I, Old, Node, S) ->
    S1 = new_conn(I, Node, S),
    case rand:uniform(2) of
        1 -> end_conn(I, Old, notice, S1);
        2 -> S1
    end.

%% Connect, disconnect and connect again, all in one millisecond on one node.
flap(I, Node, S) ->
    S1 = new_conn(I, Node, S),
    Conn = maps:get(live, client(I, S1)),
    new_conn(I, Node, end_conn(I, Conn, disconnect, S1)).

new_conn(I, Node, S = #{clock := Clock, conns := N, nodes := Nodes, pending_connects := Pending}) ->
    Client = #{id := Id, username := User, last_at := LastAt, last := Last} = maps:merge(#{last => none},
                                                                                       client(I, S)),
    #{gen := Gen} = maps:get(Node, Nodes),
    %% A later connect of a client has a later connected_at, except back to back on one node where
    %% the node's order (seq) decides; never two connections of one client in one millisecond on
    %% two nodes or node restarts (no one could say which came first).
    SameMsAllowed = case Last of
                        #{node := Node, gen := Gen, key := LastKey} -> not maps:is_key(LastKey, Pending);
                        _ -> false
                    end,
    At = case SameMsAllowed of
             true -> max(Clock, LastAt);
             false -> max(Clock, LastAt + 1)
         end,
    %% A channel pid of its own for every connection (pids that no process holds).
    Pid = list_to_pid(lists:flatten(io_lib:format("<0.~b.~b>", [N rem 32768, N div 32768]))),
    Conn = #{key => N, node => Node, gen => Gen, pid => Pid, at => At},
    Event = emqx_rabbitmq_hook:connected_event(erh_test_emqx:clientinfo(emqx5, Id, User),
                                               erh_test_emqx:conninfo(emqx5, Id, User, At), Pid),
    S1 = put_client(I, Client#{live := Conn, last_at := At, last => Conn}, S#{conns := N + 1}),
    deliver(Node, Conn, connect, Event, maybe_delay(20), S1).

%% The connection ends: a disconnect (the client left) or a notice of a takeover. Either way the
%% model forgets it as live when it is the client's live connection.
end_conn(I, Conn = #{node := Node, gen := Gen, pid := Pid, at := At}, How, S = #{clock := Clock}) ->
    Client = #{id := Id, username := User} = client(I, S),
    Reason = case How of
                 disconnect -> pick([normal, keepalive_timeout, {shutdown, sock_closed}, tcp_closed]);
                 notice -> pick([takeovered, {shutdown, discarded}, {shutdown, takeovered}])
             end,
    Event = emqx_rabbitmq_hook:disconnected_event(erh_test_emqx:clientinfo(emqx5, Id, User), Reason,
                                                  erh_test_emqx:disconninfo(emqx5, Id, User, At, max(Clock, At)),
                                                  Pid),
    S1 = case maps:get(live, Client) of
             Conn -> put_client(I, Client#{live := none}, S);
             _ -> S
         end,
    Delay = case How of
                notice -> maybe_delay(2);
                disconnect -> maybe_delay(10)
            end,
    case maps:get(Node, maps:get(nodes, S1)) of
        #{alive := true, gen := Gen} -> deliver(Node, Conn, disconnect, Event, Delay, S1);
        _ -> S1
    end.

%% One event in N is held back for up to 400 steps.
maybe_delay(N) ->
    case rand:uniform(N) of
        1 -> rand:uniform(400);
        _ -> 0
    end.

client(I, #{clients := Clients}) -> maps:get(I, Clients).

put_client(I, Client, S = #{clients := Clients}) -> S#{clients := Clients#{I := Client}}.

%%--------------------------------------------------------------------
%% Delivery: to the node's instance now, or later through its delay buffer. The events of one
%% connection always keep their order (they come from one channel process).
%%--------------------------------------------------------------------

deliver(Node, #{key := Key}, Kind, Event, Delay, S = #{step := Step, nodes := Nodes, pending_connects := Pending}) ->
    NodeState = #{buffer := Buffer, held := Held} = maps:get(Node, Nodes),
    case Delay =:= 0 andalso not maps:is_key(Key, Held) of
        true ->
            submit(Node, Event, S);
        false ->
            At = max(Step + Delay, maps:get(Key, Held, 0)),
            Buffer1 = gb_trees:insert({At, erlang:unique_integer([monotonic])},
                                      {Key, Kind, Event}, Buffer),
            Pending1 = case Kind of
                           connect -> Pending#{Key => true};
                           disconnect -> Pending
                       end,
            S#{nodes := Nodes#{Node := NodeState#{buffer := Buffer1, held := Held#{Key => At}}},
               pending_connects := Pending1}
    end.

submit(Node, Event, S = #{nodes := Nodes, submitted := Submitted}) ->
    #{handle := Handle} = maps:get(Node, Nodes),
    ok = emqx_rabbitmq_hook_nif:submit(Handle, Event),
    S#{submitted := Submitted + 1}.

%% Deliver what is due on every node.
release(S = #{step := Step}) ->
    lists:foldl(fun(Node, Acc) -> release(Node, Step, Acc) end, S, [a, b]).

release_all(S) ->
    lists:foldl(fun(Node, Acc) -> release(Node, infinity, Acc) end, S, [a, b]).

release(Node, Until, S = #{nodes := Nodes, pending_connects := Pending}) ->
    NodeState = #{buffer := Buffer, held := Held} = maps:get(Node, Nodes),
    case gb_trees:is_empty(Buffer) of
        true -> S;
        false ->
            case gb_trees:take_smallest(Buffer) of
                {{At, _}, {Key, _Kind, Event}, Rest} when Until =:= infinity; At =< Until ->
                    Held1 = case maps:find(Key, Held) of
                                {ok, At} -> maps:remove(Key, Held);
                                _ -> Held
                            end,
                    S1 = S#{nodes := Nodes#{Node := NodeState#{buffer := Rest, held := Held1}},
                            pending_connects := maps:remove(Key, Pending)},
                    release(Node, Until, submit(Node, Event, S1));
                _ ->
                    S
            end
    end.

%%--------------------------------------------------------------------
%% Nodes and Redis
%%--------------------------------------------------------------------

start_node(Node, S = #{redis := Redis, prefix := Prefix, nodes := Nodes}) ->
    Gen = maps:get(gen, maps:get(Node, Nodes, #{}), 0) + 1,
    %% Node b has a small presence queue: it overflows while Redis is away, and must resync.
    Buffer = case Node of
                 a -> 100000;
                 b -> 1000
             end,
    {ok, Config} = emqx_rabbitmq_hook_config:parse(
                     [{node, maps:get(Node, ?NAMES)}, {presence, true}, {redis_server, erh_test_redis:server(Redis)},
                      {redis_key_prefix, Prefix}, {presence_node_ttl_ms, ?NODE_TTL_MS},
                      {presence_tombstone_ttl_ms, 600000}, {presence_buffer_events, Buffer},
                      {events, []}, {servers, ["127.0.0.1:" ++ integer_to_list(erh_test_rabbit:free_port())]},
                      {reconnect_min_ms, 50}, {reconnect_max_ms, 300},
                      %% Nothing goes to RabbitMQ here, so the nodes need no spool folders.
                      {spool_max_bytes, 0}]),
    {ok, Handle} = emqx_rabbitmq_hook_nif:start(Config),
    S#{nodes := Nodes#{Node => #{handle => Handle, alive => true, gen => Gen, buffer => gb_trees:empty(),
                                 held => #{}, counters => counters_of(Node, S)}}}.

%% A crash: no disconnect for any of the node's connections. It comes once the node has written
%% what it had accepted: a node that crashes with updates still in memory loses them, and when
%% one of them was the only trace of a takeover (EMQX 4 sends no disconnect for the connection a
%% takeover ends), the registry cannot know that the old connection ended (README, "Limits").
kill(Node, S0) ->
    S = #{nodes := Nodes} = release(Node, infinity, S0),
    NodeState = #{handle := Handle} = maps:get(Node, Nodes),
    ?assert(erh_test_rabbit:wait_for(
              fun() -> maps:get(presence_queue_depth, emqx_rabbitmq_hook_nif:stats(Handle)) =:= 0 end, 60000, 5)),
    ok = emqx_rabbitmq_hook_nif:stop(Handle, 0),
    Counters = add_counters(maps:get(counters, NodeState), emqx_rabbitmq_hook_nif:stats(Handle)),
    S#{nodes := Nodes#{Node := NodeState#{alive := false, buffer := gb_trees:empty(), held := #{},
                                          counters := Counters}}}.

kill_a(S) -> kill(a, S).

redis_down(S = #{redis := Redis}) ->
    ok = erh_test_redis:down(Redis),
    S#{redis_down_at => erlang:monotonic_time(millisecond)}.

%% Redis comes back once the outage has lasted longer than the liveness TTL.
redis_up(S = #{redis := Redis, redis_down_at := DownAt}) ->
    Left = DownAt + ?NODE_TTL_MS + 500 - erlang:monotonic_time(millisecond),
    timer:sleep(max(0, Left)),
    ok = erh_test_redis:up(Redis),
    S.

stop_nodes(#{nodes := Nodes}) ->
    [ok = emqx_rabbitmq_hook_nif:stop(Handle, 1000) || #{handle := Handle, alive := true} <- maps:values(Nodes)],
    flush().

flush() ->
    receive _ -> flush() after 0 -> ok end.

%%--------------------------------------------------------------------
%% Settling and checking
%%--------------------------------------------------------------------

%% The live nodes have applied everything, the dead node's liveness has expired and its boot has
%% been swept, and nothing moves any more for a while.
settle(S = #{redis := Redis, prefix := Prefix}) ->
    Alive = [Handle || #{alive := true, handle := Handle} <- maps:values(maps:get(nodes, S))],
    Quiet = fun() ->
                    lists:all(fun(H) ->
                                      case emqx_rabbitmq_hook_nif:stats(H) of
                                          #{presence_queue_depth := 0, redis_state := connected} -> true;
                                          _ -> false
                                      end
                              end, Alive)
                        andalso erh_test_redis:q(Redis, ["HLEN", [Prefix, "boots"]]) =:= length(Alive)
            end,
    Snapshot = fun() -> [maps:with([presence_applied, presence_rewritten, presence_swept, presence_resyncs],
                                   emqx_rabbitmq_hook_nif:stats(H)) || H <- Alive] end,
    ?assert(erh_test_rabbit:wait_for(Quiet, 60000, 50)),
    Before = Snapshot(),
    timer:sleep(?NODE_TTL_MS div 3 + 500),
    case Quiet() andalso Snapshot() =:= Before of
        true -> ok;
        false -> settle(S)
    end.

%% Every client, through the plugin's lookup (the read script), and the online set.
check(S = #{redis := Redis, prefix := Prefix, nodes := Nodes}) ->
    [Handle | _] = [H || #{alive := true, handle := H} <- maps:values(Nodes)],
    OnlineSet = sets:from_list(erh_test_redis:q(Redis, ["SMEMBERS", [Prefix, "online"]])),
    Results = [check_client(Handle, I, S, OnlineSet) || I <- lists:seq(1, ?CLIENTS)],
    {length(Results), [M || {mismatch, M} <- Results]}.

check_client(Handle, I, S, OnlineSet) ->
    #{id := Id} = client(I, S),
    Truth = case live(client(I, S), S) of
                none -> offline;
                #{node := Node, pid := Pid, at := At} ->
                    {online, iolist_to_binary([maps:get(Node, ?NAMES), "/", pid_to_list(Pid), "/",
                                               integer_to_binary(At)])}
            end,
    Registry = case emqx_rabbitmq_hook:presence(Handle, Id) of
                   #{online := true, conn_id := ConnId} -> {online, ConnId};
                   #{online := false} -> offline
               end,
    InSet = sets:is_element(Id, OnlineSet),
    case Registry =:= Truth andalso InSet =:= (Truth =/= offline) of
        true -> ok;
        false -> {mismatch, #{client => I, truth => Truth, registry => Registry, in_online_set => InSet}}
    end.

%% Counters of both nodes, all their instances together.
counters(#{nodes := Nodes}) ->
    Totals = maps:fold(fun(_, #{alive := Alive, handle := Handle, counters := Counters}, Acc) ->
                               Now = case Alive of
                                         true -> add_counters(Counters, emqx_rabbitmq_hook_nif:stats(Handle));
                                         false -> Counters
                                     end,
                               maps:merge_with(fun(_, A, B) -> A + B end, Acc, Now)
                       end, #{}, Nodes),
    lists:join(", ", [io_lib:format("~ts ~b", [K, V]) || {K, V} <- lists:sort(maps:to_list(Totals))]).

-define(COUNTERS, [presence_queued, presence_applied, presence_ignored, presence_dropped, presence_resyncs,
                   presence_rewritten, presence_superseded, presence_swept, presence_retried,
                   redis_reconnects, redis_connect_failures]).

counters_of(Node, #{nodes := Nodes}) ->
    case Nodes of
        #{Node := #{counters := Counters}} -> Counters;
        _ -> maps:from_list([{K, 0} || K <- ?COUNTERS])
    end.

add_counters(Counters, Stats) ->
    maps:map(fun(K, V) -> V + maps:get(K, Stats) end, Counters).
