# gnuplot: device fault latency distribution beside the CPU baseline.
# Usage: gnuplot -e "samples='fault-samples.txt'; out='fault-latency.png'" tests/plot-latency.gp
# samples: one line per backend and iteration (hmirror-bench -H):
#   "<backend> <device fault ns> <CPU minor fault after device work ns>
#   <same command, page mirrored ns> <NOP round trip ns> <CPU minor fault,
#   warm, ns>"; the CPU and NOP figures are per iteration, shared by both
#   backends' lines, so they are plotted from the gup lines.
set terminal pngcairo size 1000,600 noenhanced
set output out
set title "hmirror: 4 KiB latency (CDF), same run, interleaved per iteration: device fault vs the CPU's minor fault"
set xlabel "latency (us, log scale)"
set ylabel "fraction of samples at or below"
set logscale x
set grid
set key bottom right
set yrange [0:1]
plot samples using (strcol(1) eq "gup" ? $2/1000.0 : NaN):(1.0) smooth cnorm lw 2 title "device fault, gup backend", \
     samples using (strcol(1) eq "hmm" ? $2/1000.0 : NaN):(1.0) smooth cnorm lw 2 title "device fault, hmm backend", \
     samples using (strcol(1) eq "gup" ? $4/1000.0 : NaN):(1.0) smooth cnorm lw 2 dt 3 title "same command, page already mirrored (no fault)", \
     samples using (strcol(1) eq "gup" ? $5/1000.0 : NaN):(1.0) smooth cnorm lw 2 dt 4 title "NOP round trip", \
     samples using (strcol(1) eq "gup" ? $3/1000.0 : NaN):(1.0) smooth cnorm lw 2 dt 2 title "baseline: CPU minor fault, after device work", \
     samples using (strcol(1) eq "gup" ? $6/1000.0 : NaN):(1.0) smooth cnorm lw 2 dt 2 title "CPU minor fault, warm (right after another)"
