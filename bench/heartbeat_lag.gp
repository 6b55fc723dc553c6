# bench/heartbeat_lag.gp - CDF of the heartbeat lag, idle vs offloaded vs inline.
# gnuplot -e "data='DIR'; out='docs/img/heartbeat_lag.png'" bench/heartbeat_lag.gp
if (!exists("data")) data = "."
if (!exists("out")) out = "heartbeat_lag.png"
set terminal pngcairo size 900,560 font "sans,11"
set output out
set title "Lag of a 1 ms heartbeat timer on the io_context while 10 ms blocking calls run" noenhanced
set xlabel "tick lag (microseconds, log scale)"
set ylabel "fraction of ticks with lag <= x"
set logscale x 10
set xrange [1:100000]
set yrange [0:1.02]
set grid xtics ytics mxtics
set key outside below vertical noenhanced
set format x "10^{%T}"
plot data."/heartbeat_idle.dat"    using ($1 < 1 ? 1 : $1):(1) smooth cnormal lw 2.5 lc rgb "#1b9e77" title "idle loop", \
     data."/heartbeat_offload.dat" using ($1 < 1 ? 1 : $1):(1) smooth cnormal lw 2.5 lc rgb "#7570b3" title "blocking calls through smartasync (co_await w.async_call())", \
     data."/heartbeat_inline.dat"  using ($1 < 1 ? 1 : $1):(1) smooth cnormal lw 2.5 lc rgb "#d95f02" title "blocking calls inline on the loop"
