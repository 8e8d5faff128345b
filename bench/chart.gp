# The chart of bench/results: throughput, hook cost, presence and memory side by side. erh_bench_report
# writes the data files and runs: gnuplot -e "datadir='...'; out='...png'" chart.gp
set terminal pngcairo size 2100,500 noenhanced
set output out
set multiplot layout 1,4
set style fill solid 0.85 border -1
set grid ytics
set key top right

set title "End-to-end throughput, events/s"
set style data histograms
set style histogram clustered gap 1
set yrange [0:*]
set offsets 0, 0, graph 0.35, 0
set key top left
plot datadir.'/throughput.dat' using 2:xtic(1) title 'limit: rabbitmq-c', \
     '' using 3 title 'limit with our properties', \
     '' using 4 title 'emqx_rabbitmq_hook', \
     '' using 5 title 'naive: amqp_client', \
     '' using 6 title 'limit, queue without arguments'

set title "Hook call, ns (log scale)"
set key top left horizontal
set logscale y
set yrange [100:*]
set bmargin 7
set xtics rotate by -30
plot datadir.'/hook.dat' using 2:xtic(1) title 'p50', '' using 3 title 'p99', '' using 4 title 'p999'
unset logscale y
set xtics norotate
set bmargin 7

set title "Presence registry in Redis, updates/s"
set key top left
set yrange [0:*]
set offsets 0, 0, graph 0.35, 0
plot datadir.'/presence.dat' using 2:xtic(1) title 'limit: hiredis, pipelined EVALSHA', \
     '' using 3 title 'emqx_rabbitmq_hook'

set title "Resident memory while RabbitMQ is down, MiB"
set offsets 0, 0, 0, 0
set style data lines
set xlabel "seconds"
set yrange [0:*]
set key bottom right
plot datadir.'/memory.dat' using 1:2 title 'RSS' lw 2, \
     '' using 1:3 title 'node alone + buffer bound' dt 2 lw 2, \
     '' using 1:4 title '+ fixed overhead' dt 3 lw 2
unset multiplot
