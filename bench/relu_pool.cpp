// relu followed by a 2x2 max-pool, forward and backward, as two ops (relu, then max_pool2d)
// against the fused relu_max_pool2d that Sequential runs, at lenet5's two activation shapes
// (batch 64). Interleaved rounds, medians, the ratio printed.
// Usage: bench_relu_pool [ROUNDS] [THREADS]
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "timing.hpp"
#include "verdant/autograd/ops.hpp"
#include "verdant/core/threading.hpp"

using namespace verdant;
using verdant::bench::median;
using verdant::bench::ms_per_call;

int main(int argc, char** argv) {
  const auto [rounds, threads] = bench::rounds_and_threads(argc, argv, 7);
  std::printf(
      "relu + max_pool2d (two ops) vs relu_max_pool2d (fused); forward + backward, "
      "%d threads, %d rounds, ms per call\n",
      threads, rounds);
  std::printf("%-22s %10s %10s %8s\n", "shape", "two ops", "fused", "speedup");
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (Shape s : {Shape{64, 20, 24, 24}, Shape{64, 50, 8, 8}}) {
    Tensor x(s, DType::f32);
    for (std::int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = d(gen);
    Tensor upstream({s[0], s[1], s[2] / 2, s[3] / 2}, DType::f32);
    for (std::int64_t i = 0; i < upstream.numel(); ++i) upstream.data<float>()[i] = d(gen);
    auto two_ops = [&] {
      autograd::Variable v(x, true);
      autograd::max_pool2d(autograd::relu(v), 2).backward(upstream);
    };
    auto fused = [&] {
      autograd::Variable v(x, true);
      autograd::relu_max_pool2d(v, 2).backward(upstream);
    };
    std::vector<double> a, b;
    for (int r = 0; r < rounds; ++r) {
      a.push_back(ms_per_call(two_ops, 20));
      b.push_back(ms_per_call(fused, 20));
    }
    std::printf("%-22s %10.3f %10.3f %7.2fx\n", shape_str(s).c_str(), median(a), median(b),
                median(a) / median(b));
  }
}
