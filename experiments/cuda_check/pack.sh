#!/usr/bin/env bash
# cuda_check/pack.sh: builds what run.sh needs for the GPU machine and packs it, with the shared
# libraries it links (the GPU machine has no apt: OpenBLAS, jansson, libcsv, ... travel along),
# into .gpu/pack.tar.gz (ignored by git; name `.gpu` in the device call's carry).
#
#   bash experiments/cuda_check/pack.sh            (from the repository root, on the CPU machine)
#
# The build (build-gpu/) is for sm_90 and for any x86-64-v3 processor (RLHF_NATIVE=OFF: this
# machine's -march=native could use instructions the GPU machine's processor lacks). On the GPU
# machine:
#   mkdir -p /tmp/g && tar -xzf .gpu/pack.tar.gz -C /tmp/g && bash experiments/cuda_check/run.sh /tmp/g/build
# run.sh finds the libraries in /tmp/g/lib and the models in /tmp/g/shared by itself.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${RLHF_SHARED:-../shared}
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DRLHF_NATIVE=OFF \
    -DRLHF_CUEMU=OFF >/dev/null
cmake --build build-gpu -j"$(nproc)" --target rlhf rlhf_cuda test_cuda_ops test_backend_host test_ops \
    test_sample
[ -f build-gpu/librlhf_cuda.so ] || { echo "pack.sh: no librlhf_cuda.so (is nvcc on the PATH?)" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/build" "$stage/lib" "$stage/shared/models"
bins="rlhf librlhf_cuda.so test_cuda_ops test_backend_host test_ops test_sample"
for b in $bins; do cp "build-gpu/$b" "$stage/build/"; done
# every library they load except the C runtime and CUDA's own (the GPU machine has those)
for b in $bins; do ldd "build-gpu/$b"; done | awk '$2 == "=>" && $3 ~ /^\// {print $3}' | sort -u |
    grep -vE '/(ld-linux|libc|libm|libpthread|libdl|librt|libstdc\+\+|libgcc_s|libcuda|libcudart|libcublas|libcublasLt)[.-]' |
    while read -r lib; do cp -L "$lib" "$stage/lib/"; done
cp "$SHARED/models/stories260K.bin" "$stage/shared/models/"
mkdir -p .gpu
tar -C "$stage" -czf .gpu/pack.tar.gz .
echo "packed .gpu/pack.tar.gz ($(du -h .gpu/pack.tar.gz | cut -f1)): $(ls "$stage/build" | tr '\n' ' ')"
echo "libraries: $(ls "$stage/lib" | tr '\n' ' ')"
