# gnuplot: device fault latency distribution beside the CPU baseline.
# Usage: gnuplot -e "samples='fault-samples.txt'; out='fault-latency.png'" tests/plot-latency.gp
# samples: lines "<backend> <device fault ns> <CPU minor fault ns>".
set terminal pngcairo size 1000,600 noenhanced
set output out
set title "hmirror: 4 KiB fault latency (CDF): device fault vs the CPU's minor fault, same run"
set xlabel "latency (us, log scale)"
set ylabel "fraction of faults at or below"
set logscale x
set grid
set key bottom right
set yrange [0:1]
plot samples using (strcol(1) eq "gup" ? $2/1000.0 : NaN):(1.0) smooth cnorm lw 2 title "device fault, gup backend", \
     samples using (strcol(1) eq "hmm" ? $2/1000.0 : NaN):(1.0) smooth cnorm lw 2 title "device fault, hmm backend", \
     samples using (strcol(1) eq "gup" ? $3/1000.0 : NaN):(1.0) smooth cnorm lw 2 dt 2 title "baseline: CPU minor fault"
