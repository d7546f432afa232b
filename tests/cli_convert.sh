#!/usr/bin/env bash
# cli_convert.sh: acceptance checks of `rlhf convert` and `rlhf model info` on Hugging Face dirs.
#
#   cli-conv-01  `rlhf convert --help` exits 0 and lists its options
#   cli-conv-02  usage errors exit 2 (missing OUT, bad --dtype, bad --shard-size, bf16 to .bin,
#                --shard-size to .bin)
#   cli-conv-03  a random GQA model (rlhf model init): .bin -> HF -> .bin is byte-identical and the
#                HF file carries no RoPE-table metadata (our tables are what the writer computes);
#                the same for a v1 file (--format v1, no tables) back with --llama2c-version 1; HF ->
#                HF re-typed to bf16 and sharded writes shards + index and converts back to a .bin
#                of the same size
#   cli-conv-04  `rlhf model info` on HF dirs: format, config, parameter count, memory per role
#   cli-conv-05  an existing OUT is refused (exit 1) unless --force; no temporary dirs left
#   cli-conv-06  corrupt inputs exit 1 naming the file: truncated model.safetensors, config.json
#                without hidden_size, index naming a missing shard, absent input
#   cli-conv-07  ../shared/models/stories260K.bin and aidreams260K.bin (v0, PyTorch's RoPE tables)
#                -> HF -> .bin: byte-identical to the original (the tables travel in the
#                safetensors metadata), so is a direct .bin -> .bin rewrite and HF -> HF (bf16,
#                sharded) -> .bin keeps the tables; corrupt metadata (bad base64 character, a
#                shape that disagrees with the data) exits 1 naming the file and the key
#
# Environment: RLHF_BIN (the program), RLHF_SHARED (../shared), RLHF_SRC (the checkout).
# Exit status: 0 all passed, 1 a check failed, 77 when stories260K.bin is missing (after the other
# checks passed).
set -u

. "$(dirname "$0")/lib.sh"
STORIES=$SHARED/models/stories260K.bin

run() {
    local out=$1 err=$2
    shift 2
    "$BIN" "$@" >"$out" 2>"$err"
}

# ---- cli-conv-01 ------------------------------------------------------------------------------------
echo "# cli-conv-01: help"
run "$TMP/out" "$TMP/err" convert --help
rc=$?
if [ $rc -eq 0 ]; then ok "convert --help -> 0"; else fail "convert --help -> $rc"; fi
for opt in --to --dtype --shard-size --llama2c-version --force; do
    if grep -q -- "$opt" "$TMP/out"; then ok "convert --help lists $opt"; else fail "convert --help lacks $opt"; fi
done
run "$TMP/out" "$TMP/err" --help
if grep -q "convert" "$TMP/out"; then ok "rlhf --help lists convert"; else fail "rlhf --help lacks convert"; fi

# ---- cli-conv-02 ------------------------------------------------------------------------------------
echo "# cli-conv-02: usage errors exit 2"
usage() {
    local what=$1
    shift
    run "$TMP/out" "$TMP/err" "$@"
    local rc=$?
    if [ $rc -eq 2 ] && grep -q "usage: rlhf convert" "$TMP/err"; then ok "$what -> 2"; else fail "$what: exit $rc, want 2"; fi
}
usage "no OUT" convert in.bin
usage "--dtype f16" convert in.bin outdir --dtype f16
usage "--shard-size abc" convert in.bin outdir --shard-size abc
usage "--shard-size 5XB" convert in.bin outdir --shard-size 5XB
usage "--dtype bf16 to a .bin" convert in.bin out.bin --dtype bf16
usage "--shard-size to a .bin" convert in.bin out.bin --shard-size 1MB
usage "--to xyz" convert in.bin out --to xyz

# ---- cli-conv-03 ------------------------------------------------------------------------------------
echo "# cli-conv-03: random model round trips"
M=$TMP/rand.bin
if run "$TMP/out" "$TMP/err" model init --out "$M" --dim 64 --hidden 96 --layers 2 --heads 4 \
    --kv-heads 2 --vocab 100 --seq 32 --seed 3; then ok "model init"; else fail "model init: $(cat "$TMP/err")"; fi
if run "$TMP/out" "$TMP/err" convert "$M" "$TMP/rand_hf"; then
    ok "convert .bin -> HF"
else
    fail "convert .bin -> HF: $(cat "$TMP/err")"
fi
if [ -f "$TMP/rand_hf/config.json" ] && [ -f "$TMP/rand_hf/model.safetensors" ]; then
    ok "HF dir holds config.json and model.safetensors"
else
    fail "HF dir contents: $(ls "$TMP/rand_hf" 2>&1)"
fi
if grep -q '"LlamaForCausalLM"' "$TMP/rand_hf/config.json" && grep -q '"num_key_value_heads": 2' "$TMP/rand_hf/config.json"; then
    ok "config.json names LlamaForCausalLM, 2 kv heads"
else
    fail "config.json: $(cat "$TMP/rand_hf/config.json")"
fi
run "$TMP/out" "$TMP/err" convert "$TMP/rand_hf" "$TMP/rand_back.bin"
if cmp -s "$M" "$TMP/rand_back.bin"; then ok ".bin -> HF -> .bin byte-identical"; else fail ".bin -> HF -> .bin differs"; fi
if grep -a -q "llama2c_freq_cis" "$TMP/rand_hf/model.safetensors"; then fail "model init's tables stored as metadata"; else ok "no RoPE-table metadata for tables equal to ours"; fi
M1=$TMP/rand_v1.bin
run "$TMP/out" "$TMP/err" model init --out "$M1" --format v1 --dim 64 --hidden 96 --layers 2 --heads 4 \
    --kv-heads 2 --vocab 100 --seq 32 --seed 4 || fail "model init v1: $(cat "$TMP/err")"
run "$TMP/out" "$TMP/err" convert "$M1" "$TMP/rand_v1_hf" || fail "convert v1 -> HF: $(cat "$TMP/err")"
run "$TMP/out" "$TMP/err" convert "$TMP/rand_v1_hf" "$TMP/rand_v1_back.bin" --llama2c-version 1 || fail "convert HF -> v1: $(cat "$TMP/err")"
if cmp -s "$M1" "$TMP/rand_v1_back.bin" && ! grep -a -q "llama2c_freq_cis" "$TMP/rand_v1_hf/model.safetensors"; then
    ok "v1 .bin -> HF -> v1 .bin byte-identical, no metadata"
else
    fail "v1 .bin -> HF -> v1 .bin differs (or metadata written)"
fi
if run "$TMP/out" "$TMP/err" convert "$TMP/rand_hf" "$TMP/rand_bf16" --dtype bf16 --shard-size 20KB; then
    ok "HF -> HF bf16, sharded"
else
    fail "HF -> HF bf16: $(cat "$TMP/err")"
fi
nshards=$(ls "$TMP/rand_bf16" 2>/dev/null | grep -c '^model-.*-of-.*\.safetensors$')
if [ "$nshards" -gt 1 ] && [ -f "$TMP/rand_bf16/model.safetensors.index.json" ] && grep -q '"torch_dtype": "bfloat16"' "$TMP/rand_bf16/config.json"; then
    ok "$nshards shards + index, torch_dtype bfloat16"
else
    fail "sharded bf16 dir: $(ls "$TMP/rand_bf16" 2>&1)"
fi
run "$TMP/out" "$TMP/err" convert "$TMP/rand_bf16" "$TMP/rand_bf16.bin"
if [ -f "$TMP/rand_bf16.bin" ] && [ "$(stat -c %s "$TMP/rand_bf16.bin")" = "$(stat -c %s "$M")" ]; then
    ok "bf16 shards -> .bin"
else
    fail "bf16 shards -> .bin: $(cat "$TMP/err")"
fi

# ---- cli-conv-04 ------------------------------------------------------------------------------------
echo "# cli-conv-04: model info on HF dirs"
if run "$TMP/out" "$TMP/err" model info "$TMP/rand_hf"; then ok "model info HF -> 0"; else fail "model info HF: $(cat "$TMP/err")"; fi
run "$TMP/bin_info" "$TMP/err" model info "$M"
P=$(sed -n 's/^parameters: \([0-9]*\).*/\1/p' "$TMP/bin_info")
for pat in "format: *Hugging Face LlamaForCausalLM, model.safetensors, F32" "kv-heads 2" \
    "^parameters: $P " "policy (trainable, LM head) .*Adam m,v" "reference (frozen, LM head) *params" \
    "reward / value (trainable, scalar) .*Adam m,v" "model.layers.\*.self_attn.k_proj.weight *(2, 32, 64)"; do
    if [ -n "$P" ] && grep -q -- "$pat" "$TMP/out"; then ok "model info shows '$pat'"; else fail "model info lacks '$pat'"; fi
done
run "$TMP/out" "$TMP/err" model info "$TMP/rand_bf16"
if grep -q "shards + index, BF16" "$TMP/out"; then ok "model info on the sharded bf16 dir"; else fail "model info bf16: $(head -3 "$TMP/out") $(cat "$TMP/err")"; fi
if grep -q "memory per role" "$TMP/bin_info"; then ok "model info on a .bin shows memory per role"; else fail "no memory lines for a .bin"; fi

# ---- cli-conv-05 ------------------------------------------------------------------------------------
echo "# cli-conv-05: existing OUT"
run "$TMP/out" "$TMP/err" convert "$M" "$TMP/rand_hf" --dtype bf16
rc=$?
if [ $rc -eq 1 ] && grep -q "not empty" "$TMP/err"; then ok "existing dir refused"; else fail "existing dir: exit $rc $(cat "$TMP/err")"; fi
if grep -q '"torch_dtype": "float32"' "$TMP/rand_hf/config.json"; then ok "refused dir untouched"; else fail "refused dir changed"; fi
run "$TMP/out" "$TMP/err" convert "$M" "$TMP/rand_back.bin"
rc=$?
if [ $rc -eq 1 ] && grep -q "exists" "$TMP/err"; then ok "existing .bin refused"; else fail "existing .bin: exit $rc"; fi
if run "$TMP/out" "$TMP/err" convert "$M" "$TMP/rand_hf" --dtype bf16 --force && grep -q '"torch_dtype": "bfloat16"' "$TMP/rand_hf/config.json"; then
    ok "--force replaces the dir"
else
    fail "--force: $(cat "$TMP/err")"
fi
if ls "$TMP" | grep -q -e '\.tmp-' -e '\.old-'; then fail "temporary entries left: $(ls "$TMP")"; else ok "no temporary entries left"; fi

# ---- cli-conv-06 ------------------------------------------------------------------------------------
echo "# cli-conv-06: corrupt inputs"
bad() {
    local what=$1 needle=$2
    shift 2
    run "$TMP/out" "$TMP/err" "$@"
    local rc=$?
    if [ $rc -eq 1 ] && grep -q -- "$needle" "$TMP/err"; then ok "$what -> 1 naming $needle"; else fail "$what: exit $rc, stderr: $(cat "$TMP/err")"; fi
}
cp -r "$TMP/rand_bf16" "$TMP/c1"
f=$(ls "$TMP/c1" | grep '^model-' | head -1)
head -c 100 "$TMP/c1/$f" >"$TMP/c1/$f.cut" && mv "$TMP/c1/$f.cut" "$TMP/c1/$f"
bad "truncated shard" "$f" convert "$TMP/c1" "$TMP/c1_out"
bad "truncated shard (model info)" "$f" model info "$TMP/c1"
cp -r "$TMP/rand_bf16" "$TMP/c2"
sed -i '/"hidden_size"/d' "$TMP/c2/config.json"
bad "config.json without hidden_size" "hidden_size" convert "$TMP/c2" "$TMP/c2_out"
cp -r "$TMP/rand_bf16" "$TMP/c3"
rm "$TMP/c3/$f"
bad "index naming a missing shard" "$f" convert "$TMP/c3" "$TMP/c3_out"
bad "absent input" "$TMP/nothing" convert "$TMP/nothing" "$TMP/c4_out"
if ls "$TMP" | grep -q -e '_out'; then fail "a failed convert left output: $(ls "$TMP")"; else ok "failed converts leave no output"; fi

# ---- cli-conv-07 ------------------------------------------------------------------------------------
need_files "$STORIES" # after the checks above: exits 1 when one failed
echo "# cli-conv-07: stories260K.bin, aidreams260K.bin"
for m in stories260K aidreams260K; do
    orig=$SHARED/models/$m.bin
    if [ ! -f "$orig" ]; then
        fail "$orig not found"
        continue
    fi
    run "$TMP/out" "$TMP/err" convert "$orig" "$TMP/${m}_hf" || fail "convert $m: $(cat "$TMP/err")"
    run "$TMP/out" "$TMP/err" convert "$TMP/${m}_hf" "$TMP/${m}_back.bin" || fail "convert $m back: $(cat "$TMP/err")"
    run "$TMP/out" "$TMP/err" convert "$orig" "$TMP/${m}_direct.bin" || fail "direct rewrite $m: $(cat "$TMP/err")"
    if cmp "$orig" "$TMP/${m}_back.bin"; then ok "$m: llama2.c -> HF -> llama2.c byte-identical"; else fail "$m: llama2.c -> HF -> llama2.c differs"; fi
    if cmp -s "$orig" "$TMP/${m}_direct.bin"; then ok "$m: direct .bin -> .bin byte-identical"; else fail "$m: direct rewrite differs"; fi
    if grep -a -q '"rlhf.llama2c_freq_cis":"' "$TMP/${m}_hf/model.safetensors"; then ok "$m: PyTorch's RoPE tables in the metadata"; else fail "$m: no RoPE-table metadata"; fi
done
ST_HF=$TMP/stories260K_hf
run "$TMP/out" "$TMP/err" convert "$ST_HF" "$TMP/st_bf16" --dtype bf16 --shard-size 100KB || fail "HF -> HF bf16: $(cat "$TMP/err")"
run "$TMP/out" "$TMP/err" convert "$TMP/st_bf16" "$TMP/st_bf16.bin" || fail "bf16 HF -> .bin: $(cat "$TMP/err")"
# stories260K is tied: the tables (2 x 512 x 4 floats) are the last 16384 bytes
if cmp -s <(tail -c 16384 "$TMP/st_bf16.bin") <(tail -c 16384 "$STORIES") && grep -a -q "llama2c_freq_cis" "$TMP/st_bf16/model-00001-of-"*.safetensors; then
    ok "HF -> HF (bf16, sharded) carries the RoPE tables in the first shard"
else
    fail "HF -> HF lost the RoPE tables"
fi
cp -r "$ST_HF" "$TMP/bad1"
LC_ALL=C sed -i 's/"rlhf.llama2c_freq_cis":"AAC/"rlhf.llama2c_freq_cis":"A!C/' "$TMP/bad1/model.safetensors"
bad "bad base64 in the metadata" "rlhf.llama2c_freq_cis\": invalid base64 character 0x21" convert "$TMP/bad1" "$TMP/bad1_out.bin"
cp -r "$ST_HF" "$TMP/bad2"
LC_ALL=C sed -i 's/"rlhf.llama2c_freq_cis_shape":"\[2, 512, 4\]"/"rlhf.llama2c_freq_cis_shape":"[2, 512, 3]"/' "$TMP/bad2/model.safetensors"
bad "metadata shape disagreeing with its data" "bad2/model.safetensors: __metadata__ \"rlhf.llama2c_freq_cis\": holds 16384 bytes" convert "$TMP/bad2" "$TMP/bad2_out.bin"
if ls "$TMP" | grep -q -e 'bad._out'; then fail "a failed convert left output"; else ok "failed converts leave no output"; fi
run "$TMP/out" "$TMP/err" model info "$ST_HF"
if grep -q "^parameters: 260032 " "$TMP/out" && grep -q "kv-heads 4" "$TMP/out" && grep -q "(tied)" "$TMP/out"; then
    ok "model info stories260K HF: 260032 parameters, GQA, tied"
else
    fail "model info stories260K HF: $(head -5 "$TMP/out")"
fi

finish
