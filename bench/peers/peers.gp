# bench/peers/peers.gp - ns per call of smartasync and its peers, per configuration (log scale).
# gnuplot -e "data='peers.dat'; out='docs/img/peers.png'; panels=2" bench/peers/peers.gp
# data: bench/peers/table.py --plot; block 0 the machine as it is, block 1 (panels=2) with
# 4 busy processes (only_loaded=1: block 0 is the one with busy processes).
if (!exists("data")) data = "peers.dat"
if (!exists("out")) out = "peers.png"
if (!exists("panels")) panels = 1
if (!exists("only_loaded")) only_loaded = 0
set terminal pngcairo size 1000,(panels == 2 ? 900 : 480) font "sans,10"
set output out
set style data histograms
set style histogram cluster gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y 10
set yrange [100:5e6] # headroom for the key above the bars
set ylabel "ns per call (log scale; lower is better)"
set grid ytics mytics
set key top right noenhanced
set xtics noenhanced
set format y "10^{%T}"
colors = "#1b9e77 #d95f02 #e6ab02 #7570b3 #e7298a"
array names[5] = ["smartasync co_await w.async_call(x)", "tokio spawn_blocking", "tokio spawn_blocking, IO driver", "libuv uv_queue_work", "Python asyncio.to_thread"]
set multiplot layout panels,1
do for [block = 0:panels - 1] {
  set title (block == 0 && !only_loaded ? "Offload round trip of a trivial call: event loop -> pool of N threads -> loop" \
                        : "The same with 4 busy processes on the 2 cores") noenhanced
  plot for [col = 2:6] data index block using col:xtic(1) lc rgb word(colors, col - 1) \
       title names[col - 1]
}
unset multiplot
