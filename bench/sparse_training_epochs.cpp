// RigL at 90% sparsity against dense training of `mlp`, both in this one process: rounds of
// (dense, RigL) trainings with the settings of bench/sparse_training.py (recipes/rigl_mlp_90.yaml,
// lr 0.05, weight decay 5e-4, seed 42, the same epochs and threads on both sides). Each round's
// two median epochs are taken back to back in the same process, so their ratio does not carry
// the speed this VM gives one process and not the next; the median of the rounds' ratios is
// printed with the accuracies, and the ratio of each side's fastest run (the machine's speed
// changes for seconds at a time, so a run can be slow throughout). bench/sparse_training.py
// gives the joules, one process a run.
// Usage: bench_sparse_training_epochs [ROUNDS] [THREADS] [EPOCHS]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "timing.hpp"
#include "verdant/compress/run.hpp"
#include "verdant/train/run.hpp"

using namespace verdant;

namespace {

template <typename Options>
void set_common(Options& o, std::int64_t epochs, int threads) {
  o.model = "mlp";
  o.epochs = epochs;
  o.optimizer.lr = 0.05;
  o.optimizer.weight_decay = 5e-4;
  o.seed = 42;
  o.threads = threads;
  o.out_dir.clear();
  o.energy.print = false;
}

struct Side {
  double epoch_s, accuracy;
};

}  // namespace

int main(int argc, char** argv) {
  const auto [rounds, threads] = bench::rounds_and_threads(argc, argv, 3);
  const std::int64_t epochs = argc > 3 ? std::atoll(argv[3]) : 10;
  train::TrainingOptions dense;
  set_common(dense, epochs, threads);
  compress::RunOptions rigl;
  rigl.recipe = VERDANT_SOURCE_DIR "/recipes/rigl_mlp_90.yaml";
  set_common(rigl.training, epochs, threads);
  std::printf("mlp dense vs RigL 90%% (%s), %lld epochs, %d threads, in one process\n",
              rigl.recipe.c_str(), static_cast<long long>(epochs), threads);
  std::vector<double> ratios, dense_epochs, rigl_epochs;
  for (int r = 0; r < rounds; ++r) {
    const train::TrainingReport d = train::run_training(dense);
    const compress::RunReport s = compress::run_recipe(rigl);
    const Side a{d.median_epoch_seconds, d.test ? d.test->accuracy : NAN};
    const Side b{s.training.median_epoch_seconds, s.accuracy_after};
    ratios.push_back(b.epoch_s / a.epoch_s);
    dense_epochs.push_back(a.epoch_s);
    rigl_epochs.push_back(b.epoch_s);
    std::printf("round %d: dense epoch %.3f s (%.2f%%), rigl epoch %.3f s (%.2f%%), %.2fx\n", r + 1,
                a.epoch_s, 100 * a.accuracy, b.epoch_s, 100 * b.accuracy, ratios.back());
    std::fflush(stdout);
  }
  const double fastest_dense = *std::min_element(dense_epochs.begin(), dense_epochs.end());
  const double fastest_rigl = *std::min_element(rigl_epochs.begin(), rigl_epochs.end());
  std::printf(
      "rigl / dense epoch: median %.2fx over %d rounds; fastest runs %.3f / %.3f s = %.2fx\n",
      bench::median(ratios), rounds, fastest_rigl, fastest_dense, fastest_rigl / fastest_dense);
  return 0;
}
