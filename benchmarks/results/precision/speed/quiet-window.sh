#!/bin/bash
# Quiet-window measurements: experiments are paused (SIGSTOP) while these run alone on the 2 cores.
set -x
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 GLUE_DIR=/work/shared/data/glue MPLBACKEND=Agg
cd /work/main
OUT=runs/quiet
T0=$(date +%s)
python3 -m benchmarks.perf.precision_speed --supernet runs/precision/bf16/supernets/sst2/minilm/small/sandwich/seed0 \
    --out $OUT/speed-sst2 --threads 2 --steps 30 --num-samples 100 > $OUT/speed-sst2.log 2>&1
for variant in old new-auto new-fp32; do
  rm -rf /tmp/demo-$variant
  start=$(date +%s.%N)
  if [ $variant = old ]; then
    (cd /tmp/oldcode && python3 -m benchmarks.cli demo --data-dir /work/shared/data/glue --output-dir /tmp/demo-$variant --no-progress) > $OUT/demo-$variant.log 2>&1
  elif [ $variant = new-auto ]; then
    plm-nas demo --data-dir /work/shared/data/glue --output-dir /tmp/demo-$variant --no-progress > $OUT/demo-$variant.log 2>&1
  else
    plm-nas demo --data-dir /work/shared/data/glue --output-dir /tmp/demo-$variant --precision fp32 --no-progress > $OUT/demo-$variant.log 2>&1
  fi
  end=$(date +%s.%N)
  echo "demo $variant $(echo "$end - $start" | bc) s" >> $OUT/demo-times.txt
done
for precision in bf16 fp32; do
  for batch in 1 32; do
    plm-nas latency-table --out $OUT/latency-$precision-b$batch.json --threads 1 --precision $precision --batch-size $batch \
        --seq-len 128 --check 60 --repeats 10 --warmup 2 > $OUT/latency-$precision-b$batch.log 2>&1
  done
done
for precision in fp32 bf16; do
  python3 -m benchmarks.perf.speed --threads 1 --precision $precision --batches 5 --out $OUT/speed-table-$precision.md \
      --csv $OUT/speed-table-$precision.csv > $OUT/speed-table-$precision.log 2>&1
done
echo "quiet window took $(( $(date +%s) - T0 )) s" >> $OUT/demo-times.txt
