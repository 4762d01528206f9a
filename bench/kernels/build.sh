#!/usr/bin/env bash
# Builds the GEMM kernel variants that gemm_bench.py checks and times, as PTX,
# into DIR, with DIR/kernels.json describing their launches:
#   bench/kernels/build.sh DIR [VARIANT...]
# A variant is NAME=FLAGS (extra -D flags, comma-separated) for the wgmma
# kernel; with none, a default set. Each PTX is also assembled for sm_90a
# (ptxas -v: registers, spills) into DIR/NAME.log.
set -euo pipefail
dir=$1; shift
src=$(cd "$(dirname "$0")/../.." && pwd)/src/kiln/kernels
mkdir -p "$dir"
variants=("$@")
if [ ${#variants[@]} -eq 0 ]; then
  variants=(wg_bf16=)
fi
# The launch of the configuration kiln writes for the wgmma kernel: a 64 x 512
# x 128 workgroup tile with 256 threads, for which the compiler gives 148992
# bytes of dynamic shared memory.
entries=()
for v in "${variants[@]}"; do
  name=${v%%=*}; flags=${v#*=}
  defs=()
  IFS=',' read -ra fl <<< "$flags"
  for f in "${fl[@]}"; do [ -n "$f" ] && defs+=("-D$f"); done
  input=bf16; output=same; bindings=3
  for f in "${fl[@]}"; do
    case $f in KILN_GEMM_IN=0) input=f16;; KILN_GEMM_OUT=0) output=f32;; KILN_GEMM_BINDINGS=2) bindings=2;; esac
  done
  if [[ $name == mma_* ]]; then
    nvcc -arch=compute_80 -ptx -O3 -std=c++17 "${defs[@]}" "$src/gemm_mma.cu" -o "$dir/$name.ptx"
    threads=128; smem=66560; config="[128, 128]"
    [[ " ${defs[*]} " == *KILN_GEMM_SHAPE=2* ]] && { threads=256; smem=99328; config="[128, 256]"; }
    ptxas -arch=sm_90a -v "$dir/$name.ptx" -o "$dir/$name.cubin" > "$dir/$name.log" 2>&1
  else
    # Both settings of KILN_GEMM_IN etc. must be given together, as the build does.
    if [[ " ${defs[*]} " != *KILN_GEMM_IN=* ]]; then defs+=(-DKILN_GEMM_IN=1); fi
    if [[ " ${defs[*]} " != *KILN_GEMM_OUT=* ]]; then defs+=(-DKILN_GEMM_OUT=1); fi
    if [[ " ${defs[*]} " != *KILN_GEMM_BINDINGS=* ]]; then defs+=(-DKILN_GEMM_BINDINGS=3); fi
    nvcc -gencode=arch=compute_90a,code=compute_90a -ptx -O3 -std=c++17 "${defs[@]}" "$src/gemm_wgmma.cu" -o "$dir/$name.ptx"
    sed -i 's/^\.version [0-9.]*$/.version 8.0/' "$dir/$name.ptx"
    threads=256; smem=148992; config="[64, 512]"
    ptxas -arch=sm_90a -v "$dir/$name.ptx" -o "$dir/$name.cubin" > "$dir/$name.log" 2>&1
  fi
  entries+=("{\"name\": \"$name\", \"ptx\": \"$dir/$name.ptx\", \"threads\": $threads, \"smem\": $smem, \"config\": $config, \"input\": \"$input\", \"output\": \"$output\", \"bindings\": $bindings}")
  echo "$name: $(grep -o 'Used [0-9]* registers' "$dir/$name.log"), $(grep -o '[0-9]* bytes spill stores' "$dir/$name.log")"
done
( IFS=','; echo "[${entries[*]}]" ) > "$dir/kernels.json"
