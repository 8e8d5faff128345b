%% A latency histogram many processes write at once: log-linear buckets (HDR style, 64 per power
%% of two, so a reported value is at most 1.6% above the true one) in a `counters` array, which
%% costs one uncontended add per sample whatever the number of writers.
-module(erh_bench_hist).

-export([new/0, record/2, count/1, percentile/2]).

%% Values below 2 * ?SUB are exact; above, each power of two is cut into ?SUB buckets.
-define(SUB, 64).
-define(SHIFTS, 40). %% up to 2^46 ns (about 20 hours): far beyond anything measured
-define(BUCKETS, (2 * ?SUB + ?SHIFTS * ?SUB)).

-spec new() -> counters:counters_ref().
new() ->
    counters:new(?BUCKETS, [write_concurrency]).

-spec record(counters:counters_ref(), non_neg_integer()) -> ok.
record(Hist, Value) ->
    counters:add(Hist, min(bucket(Value), ?BUCKETS - 1) + 1, 1).

-spec count(counters:counters_ref()) -> non_neg_integer().
count(Hist) ->
    lists:sum(counts(Hist)).

%% The smallest bucket value at or above which no more than (1 - Q) of the samples lie; Q in (0, 1].
-spec percentile(counters:counters_ref(), float()) -> non_neg_integer().
percentile(Hist, Q) ->
    Counts = counts(Hist),
    Rank = max(1, ceil(Q * lists:sum(Counts))),
    upper(Rank, Counts, 0, 0).

counts(Hist) ->
    [counters:get(Hist, I) || I <- lists:seq(1, ?BUCKETS)].

upper(Rank, [C | Rest], Index, Seen) ->
    case Seen + C >= Rank of
        true -> top(Index);
        false -> upper(Rank, Rest, Index + 1, Seen + C)
    end.

bucket(V) when V < 2 * ?SUB ->
    V;
bucket(V) ->
    Shift = shift(V bsr 1, 1),
    2 * ?SUB + (Shift - 1) * ?SUB + ((V bsr Shift) - ?SUB).

%% The smallest Shift with V bsr Shift < 2 * ?SUB.
shift(V, Shift) when V < 2 * ?SUB -> Shift;
shift(V, Shift) -> shift(V bsr 1, Shift + 1).

%% The largest value that falls in bucket Index.
top(Index) when Index < 2 * ?SUB ->
    Index;
top(Index) ->
    Shift = (Index - 2 * ?SUB) div ?SUB + 1,
    Mantissa = (Index - 2 * ?SUB) rem ?SUB + ?SUB,
    ((Mantissa + 1) bsl Shift) - 1.
