%% The bench's output: tables printed as aligned text, then bench/results/results.md (the same
%% tables in Markdown, with the machine they were measured on) and bench/results/results.png,
%% drawn by gnuplot (bench/chart.gp) from the sections' data sets.
-module(erh_bench_report).

-export([print/1, write/2]).

print(#{title := Title, columns := Columns, rows := Rows} = Table) ->
    Cells = [Columns | [[cell(C) || C <- Row] || Row <- Rows]],
    Widths = [lists:max([string:length(lists:nth(I, R)) || R <- Cells]) || I <- lists:seq(1, length(Columns))],
    io:format("~n~ts~n", [Title]),
    [io:format("  ~ts~n", [string:trim(lists:join("  ", [pad(C, W) || {C, W} <- lists:zip(R, Widths)]),
                                       trailing)])
     || R <- Cells],
    [io:format("  ~ts~n", [Note]) || Note <- maps:get(notes, Table, [])],
    ok.

%% BenchDir is bench/: results go to BenchDir/results, the chart script is BenchDir/chart.gp.
write(BenchDir, Sections) ->
    Results = filename:join(BenchDir, "results"),
    ok = filelib:ensure_dir(filename:join(Results, "x")),
    Markdown = [header(), [markdown(T) || #{tables := Tables} <- Sections, T <- Tables],
                "![throughput, hook cost, presence and memory](results.png)\n"],
    ok = file:write_file(filename:join(Results, "results.md"), unicode:characters_to_binary(Markdown)),
    chart(BenchDir, Results, lists:foldl(fun(S, Acc) -> maps:merge(Acc, maps:get(data, S, #{})) end, #{},
                                         Sections)),
    io:format("~nwrote ~ts and ~ts~n", [filename:join(Results, "results.md"), filename:join(Results, "results.png")]).

%%--------------------------------------------------------------------
%% Markdown
%%--------------------------------------------------------------------

header() ->
    io_lib:format("# Benchmark results~n~nMeasured by `make bench` on ~ts: ~ts, ~b cores, ~ts MiB RAM; "
                  "Erlang/OTP ~ts (erts ~ts), RabbitMQ ~ts on the same machine. The machine is shared, "
                  "so absolute figures move from run to run; the ratios are measured in one run.~n~n",
                  [today(), cpu_model(), erlang:system_info(logical_processors_available), mem_mib(),
                   erlang:system_info(otp_release), erlang:system_info(version), rabbit_version()]).

markdown(#{title := Title, columns := Columns, rows := Rows} = Table) ->
    Line = fun(Cells) -> ["| ", lists:join(" | ", Cells), " |\n"] end,
    ["### ", Title, "\n\n", Line(Columns), Line(["---" || _ <- Columns]),
     [Line([cell(C) || C <- Row]) || Row <- Rows], "\n",
     [[Note, "\n\n"] || Note <- maps:get(notes, Table, [])]].

cell(I) when is_integer(I) -> integer_to_list(I);
cell(F) when is_float(F) -> io_lib:format("~.2f", [F]);
cell(Text) -> unicode:characters_to_list(Text).

pad(Text, Width) ->
    string:pad(Text, Width).

today() ->
    {{Y, M, D}, _} = calendar:universal_time(),
    io_lib:format("~b-~2..0b-~2..0b", [Y, M, D]).

cpu_model() ->
    {ok, Info} = file:read_file("/proc/cpuinfo"),
    case re:run(Info, <<"model name\\s*:\\s*([^\\n]+)">>, [{capture, all_but_first, binary}]) of
        {match, [Model]} -> Model;
        nomatch -> "unknown CPU"
    end.

mem_mib() ->
    {ok, Info} = file:read_file("/proc/meminfo"),
    {match, [Kb]} = re:run(Info, <<"MemTotal:\\s+([0-9]+)">>, [{capture, all_but_first, binary}]),
    integer_to_list(binary_to_integer(Kb) div 1024).

rabbit_version() ->
    case filelib:wildcard("/usr/lib/rabbitmq/lib/rabbitmq_server-*") of
        [Dir | _] -> lists:nthtail(length("rabbitmq_server-"), filename:basename(Dir));
        [] -> "unknown"
    end.

%%--------------------------------------------------------------------
%% The chart
%%--------------------------------------------------------------------

%% Each data set becomes Results/<name>.dat (one row per line, text quoted for gnuplot), which
%% chart.gp reads; the .dat files are removed afterwards, only the PNG is kept.
chart(BenchDir, Results, DataSets) ->
    Files = [write_data(Results, Name, Rows) || {Name, Rows} <- maps:to_list(DataSets)],
    Png = filename:join(Results, "results.png"),
    file:delete(Png),
    Command = io_lib:format("gnuplot -e \"datadir='~ts'; out='~ts'\" '~ts' 2>&1",
                            [Results, Png, filename:join(BenchDir, "chart.gp")]),
    Output = os:cmd(lists:flatten(Command)),
    [ok = file:delete(F) || F <- Files],
    filelib:is_regular(Png) orelse error({gnuplot_failed, Output}),
    [io:format("gnuplot: ~ts~n", [Output]) || Output =/= ""],
    ok.

write_data(Dir, Name, Rows) ->
    File = filename:join(Dir, atom_to_list(Name) ++ ".dat"),
    ok = file:write_file(File, unicode:characters_to_binary([[lists:join(" ", [data_cell(C) || C <- Row]), "\n"]
                                                              || Row <- Rows])),
    File.

data_cell(I) when is_integer(I) -> integer_to_list(I);
data_cell(F) when is_float(F) -> io_lib:format("~.3f", [F]);
data_cell(Text) -> [$", Text, $"].
