# The small scale every CPU training script trains at (sourced by ablation_cpu.sh, dedicated_cpu.sh and
# unified_recipe.sh), so that their runs compare: the 4 held-out BraTS 2018 test cases, 16 feature maps,
# 96 px windows, batch 16, Adam at 1e-3 with a cosine decay, seed 0.

test_cases=Brats18_CBICA_ABM_1,Brats18_TCIA03_265_1,Brats18_TCIA10_637_1,Brats18_TCIA10_639_1
cpu_scale=(--test-cases "$test_cases" --val-cases 0
           --features 16 --slice-size 96 --batch-size 16 --optimizer adam --lr 1e-3 --schedule cosine --seed 0)
