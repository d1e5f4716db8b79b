// Training-time savings of block pruning (issue 4: "the training loop should skip work that
// sparsity makes unnecessary wherever that wins"): one Linear layer's forward + backward
// (dX and dW) at batch 64, through the block-sparse kernels against the dense OpenBLAS path on
// the same weights, for mlp's two hidden layers at several block densities. Interleaved
// rounds, medians, the ratio printed. Usage: bench_block_sparse_training [ROUNDS] [THREADS]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "verdant/autograd/ops.hpp"
#include "verdant/core/threading.hpp"
#include "verdant/kernels/block_sparse.hpp"

using namespace verdant;
using autograd::Variable;

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One training step of the layer: forward, a loss, backward into x, W and b.
double step_ms(const Variable& x, const Variable& w, const Variable& b,
               const std::shared_ptr<const kernels::BlockPattern>& pattern, int reps) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) {
    Variable y =
        pattern ? autograd::block_sparse_linear(x, w, b, pattern) : autograd::linear(x, w, b);
    autograd::sum(y).backward();
  }
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
         reps;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  set_num_threads(threads);
  std::mt19937 g(3);
  std::uniform_real_distribution<float> d(-0.1f, 0.1f);
  std::printf("block-sparse vs dense Linear, forward + backward, batch 64, %d threads, %d rounds\n",
              threads, rounds);
  std::printf("%-10s %8s %12s %12s %8s\n", "layer", "density", "dense ms", "blocks ms", "speedup");
  struct Layer {
    const char* name;
    std::int64_t out, in;
  };
  for (Layer l : {Layer{"784->300", 300, 784}, Layer{"300->100", 100, 300}})
    for (double density : {0.05, 0.1, 0.2, 0.3, 0.5}) {
      Tensor wt({l.out, l.in}, DType::f32);
      std::bernoulli_distribution keep(density);
      const std::int64_t bc = (l.in + 3) / 4;
      std::vector<char> on(static_cast<std::size_t>(((l.out + 3) / 4) * bc));
      for (auto& o : on) o = keep(g);
      for (std::int64_t r = 0; r < l.out; ++r)
        for (std::int64_t c = 0; c < l.in; ++c)
          wt.data<float>()[r * l.in + c] = on[(r / 4) * bc + c / 4] ? d(g) : 0.f;
      Tensor xt({64, l.in}, DType::f32), bt({l.out}, DType::f32);
      for (std::int64_t i = 0; i < xt.numel(); ++i) xt.data<float>()[i] = d(g);
      for (std::int64_t i = 0; i < bt.numel(); ++i) bt.data<float>()[i] = d(g);
      Variable x(xt, true), w(wt, true), b(bt, true);
      auto pattern = std::make_shared<const kernels::BlockPattern>(
          kernels::block_pattern(wt.data<float>(), l.out, l.in));
      std::vector<double> dense, sparse;
      for (int r = 0; r < rounds; ++r) {
        dense.push_back(step_ms(x, w, b, nullptr, 50));
        sparse.push_back(step_ms(x, w, b, pattern, 50));
      }
      std::printf("%-10s %7.0f%% %12.4f %12.4f %7.2fx\n", l.name, 100 * pattern->density(),
                  median(dense), median(sparse), median(dense) / median(sparse));
    }
  return 0;
}
