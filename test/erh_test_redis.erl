%% A real Redis for tests: started by test/support/redis.sh in a temporary folder on a free loopback
%% port, stopped and started again to play an outage, and a small RESP client (OTP has none) to look
%% at what the plugin wrote and to run the read script the way an IotHub server would.
-module(erh_test_redis).

-export([start/0, stop/1, down/1, up/1, up_if_down/1, wipe/1, crash/1, freeze/1, thaw/1, port/1, server/1]).
-export([q/2, read_script/0, read/3]).
%% Wait for the running plugin's presence thread to be connected with every update applied.
-export([settle/0]).

-type redis() :: #{dir := string(), port := inet:port_number()}.

%%--------------------------------------------------------------------
%% The server
%%--------------------------------------------------------------------

-spec start() -> redis().
start() ->
    Dir = filename:join(erh_test_rabbit:tmp_dir(), "erh_redis_" ++ integer_to_list(erlang:unique_integer([positive]))
                        ++ "_" ++ os:getpid()),
    Redis = #{dir => Dir, port => erh_test_rabbit:free_port()},
    up(Redis),
    Redis.

-spec stop(redis()) -> ok.
stop(Redis = #{dir := Dir}) ->
    wipe(Redis),
    os:cmd("rm -rf '" ++ Dir ++ "'"),
    ok.

%% Shut down, keeping the data for the next up/1 (SHUTDOWN SAVE, as a Redis with persistence).
down(#{dir := Dir}) ->
    {0, _} = script(["stop", Dir]),
    ok.

%% Shut down and lose the data: the next up/1 starts empty.
wipe(#{dir := Dir}) ->
    {0, _} = script(["kill", Dir]),
    ok.

%% Shut down without saving: the next up/1 loads the last snapshot (SAVE), and every write since is
%% lost although Redis acknowledged it.
crash(#{dir := Dir}) ->
    {0, _} = script(["crash", Dir]),
    ok.

up(#{dir := Dir, port := Port}) ->
    case script(["start", Dir, integer_to_list(Port)]) of
        {0, _} -> ok;
        {Status, Output} -> error({redis_did_not_start, Status, Output})
    end.

%% Stop the process (SIGSTOP): connections stay open and the kernel still accepts new ones, but
%% nothing is answered, as with a hung server; thaw/1 lets it go on.
-spec freeze(redis()) -> ok.
freeze(#{dir := Dir}) -> erh_test_proc:signal(filename:join(Dir, "redis.pid"), "STOP").

-spec thaw(redis()) -> ok.
thaw(#{dir := Dir}) -> erh_test_proc:signal(filename:join(Dir, "redis.pid"), "CONT").

%% After a test that may have left it down.
up_if_down(Redis) ->
    try q(Redis, ["PING"]) of
        <<"PONG">> -> ok
    catch
        error:{badmatch, {error, econnrefused}} -> up(Redis)
    end.

port(#{port := Port}) -> Port.

%% The value of redis_server for this Redis.
server(#{port := Port}) -> "127.0.0.1:" ++ integer_to_list(Port).

script(Args) ->
    erh_test_rabbit:support_script("redis.sh", Args).

%%--------------------------------------------------------------------
%% RESP
%%--------------------------------------------------------------------

%% One command on a new connection. Replies: a binary (simple or bulk string), an integer, a list,
%% undefined (nil) or {error, Binary}.
-spec q(redis(), [iodata() | integer()]) -> term().
q(#{port := Port}, Command) ->
    {ok, Socket} = gen_tcp:connect({127, 0, 0, 1}, Port, [binary, {active, false}], 10000),
    try
        ok = gen_tcp:send(Socket, encode(Command)),
        receive_reply(Socket, <<>>)
    after
        gen_tcp:close(Socket)
    end.

encode(Command) ->
    Args = [arg(A) || A <- Command],
    [$*, integer_to_binary(length(Args)), "\r\n"
     | [[$$, integer_to_binary(byte_size(A)), "\r\n", A, "\r\n"] || A <- Args]].

arg(A) when is_integer(A) -> integer_to_binary(A);
arg(A) -> iolist_to_binary(A).

receive_reply(Socket, Buffer) ->
    try parse(Buffer) of
        {Reply, <<>>} -> Reply
    catch
        throw:more ->
            {ok, Data} = gen_tcp:recv(Socket, 0, 30000),
            receive_reply(Socket, <<Buffer/binary, Data/binary>>)
    end.

parse(<<$+, Rest/binary>>) -> line(Rest);
parse(<<$-, Rest/binary>>) -> {Line, More} = line(Rest), {{error, Line}, More};
parse(<<$:, Rest/binary>>) -> {Line, More} = line(Rest), {binary_to_integer(Line), More};
parse(<<$$, Rest/binary>>) ->
    case line(Rest) of
        {<<"-1">>, More} -> {undefined, More};
        {Len, More} ->
            N = binary_to_integer(Len),
            case More of
                <<Bulk:N/binary, "\r\n", After/binary>> -> {Bulk, After};
                _ -> throw(more)
            end
    end;
parse(<<$*, Rest/binary>>) ->
    case line(Rest) of
        {<<"-1">>, More} -> {undefined, More};
        {Count, More} -> elements(binary_to_integer(Count), More, [])
    end;
parse(_) ->
    throw(more).

elements(0, Rest, Acc) -> {lists:reverse(Acc), Rest};
elements(N, Rest, Acc) ->
    {Element, More} = parse(Rest),
    elements(N - 1, More, [Element | Acc]).

line(Bin) ->
    case binary:split(Bin, <<"\r\n">>) of
        [Line, Rest] -> {Line, Rest};
        [_] -> throw(more)
    end.

%%--------------------------------------------------------------------
%% Reading presence as any Redis client does
%%--------------------------------------------------------------------

read_script() ->
    {ok, Script} = file:read_file(filename:join(code:priv_dir(emqx_rabbitmq_hook), "presence_read.lua")),
    Script.

%% priv/presence_read.lua with EVAL, straight from the file: the reply as a map of binaries.
read(Redis, Prefix, ClientId) ->
    Pairs = q(Redis, ["EVAL", read_script(), 1, [Prefix, "client:", ClientId], Prefix]),
    maps:from_list(pairs(Pairs)).

pairs([K, V | Rest]) -> [{K, V} | pairs(Rest)];
pairs([]) -> [].

%%--------------------------------------------------------------------
%% The plugin's side
%%--------------------------------------------------------------------

settle() ->
    Settled = fun() ->
                      case emqx_rabbitmq_hook:stats() of
                          #{presence_queue_depth := 0, redis_state := connected} -> true;
                          _ -> false
                      end
              end,
    true = erh_test_rabbit:wait_for(Settled, 30000, 10),
    ok.
