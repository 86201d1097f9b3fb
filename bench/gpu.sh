#!/usr/bin/env bash
# The model benchmarks in one go, for a GPU host that has torch, transformers and
# sentence-transformers but no Django, database or network:
#
#   bash bench/gpu.sh            (results in $OUT, or ./bench-out)
#
# MODEL: a sentence-transformers directory (default .bench-assets/minilm, written
# here by `python bench/embed_bench.py --export-model .bench-assets/minilm`).
# GEN_MODEL: a causal LM directory for the generation bench (default
# .bench-assets/gpt2-random; written on the host by `generate_bench.py --export-model`
# when missing: a random GPT-2-small-sized model, about 190 MB, too big to carry).
set -u
out=${OUT:-bench-out}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
py=${PYTHON:-python3}
model=${MODEL:-.bench-assets/minilm}
quiet() { grep -v -e "Loading weights" -e "it/s]" || true; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee "$out/gpu.txt"
$py -c "import torch, transformers, sentence_transformers as s, tokenizers as t; \
print('torch', torch.__version__, 'transformers', transformers.__version__, \
'sentence-transformers', s.__version__, 'tokenizers', t.__version__)" | tee -a "$out/gpu.txt"
timeout 200 $py bench/embed_bench.py --model "$model" --texts "${EMBED_TEXTS:-40000}" \
  --rounds 2 2>&1 | quiet | tee "$out/embed.txt"
timeout 150 $py bench/perplexity_bench.py --seconds-budget 20 2>&1 | quiet | tee "$out/perplexity.txt"
timeout 90 $py bench/semdedup_bench.py --docs 1000000 2>&1 | quiet | tee "$out/semdedup.txt"
gen_model=${GEN_MODEL:-.bench-assets/gpt2-random}
[ -f "$gen_model/config.json" ] || $py bench/generate_bench.py --export-model "$gen_model" 2>&1 | quiet
timeout 300 $py bench/generate_bench.py --model "$gen_model" --prompts "${GEN_PROMPTS:-32}" \
  --max-new-tokens 64 2>&1 | quiet | tee "$out/generate.txt"
