// Training-time savings of sparse Linear kernels: one layer's forward + backward (dX and dW) at
// batch 64, through the 4x4 block-sparse kernels and through the unstructured CSR kernels,
// each against the dense OpenBLAS path on the same weights, for mlp's two hidden layers at
// several densities. Interleaved rounds, medians, the ratio printed; the densities where the
// sparse kernels start to win are the crossovers compression switches at.
// Usage: bench_block_sparse_training [ROUNDS] [THREADS]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "timing.hpp"
#include "verdant/autograd/ops.hpp"
#include "verdant/core/threading.hpp"
#include "verdant/kernels/block_sparse.hpp"
#include "verdant/kernels/csr.hpp"

using namespace verdant;
using autograd::Variable;

using verdant::bench::median;
using verdant::bench::ms_per_call;

namespace {

// One training step of the layer: forward, a loss, backward into x (when it needs one), W and b,
// the gradients then released as the trainer does.
template <typename Forward>
double step_ms(Forward forward, std::vector<Variable> params, int reps) {
  return ms_per_call(
      [&] {
        autograd::sum(forward()).backward();
        for (auto& p : params) p.set_grad(Tensor());
      },
      reps);
}

}  // namespace

int main(int argc, char** argv) {
  const auto [rounds, threads] = bench::rounds_and_threads(argc, argv, 7);
  std::mt19937 g(3);
  std::uniform_real_distribution<float> d(-0.1f, 0.1f);
  std::printf("sparse vs dense Linear, forward + backward, batch 64, %d threads, %d rounds\n",
              threads, rounds);
  std::printf("%-7s %-10s %8s %12s %12s %8s\n", "kind", "layer", "density", "dense ms", "sparse ms",
              "speedup");
  struct Layer {
    const char* name;
    std::int64_t out, in;
  };
  for (const char* kind : {"block", "csr"})
    for (Layer l : {Layer{"784->300", 300, 784}, Layer{"300->100", 100, 300}})
      for (double density : {0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5}) {
        const bool blocks = kind[0] == 'b';
        Tensor wt({l.out, l.in}, DType::f32);
        Tensor mask({l.out, l.in}, DType::u8);
        std::bernoulli_distribution keep(density);
        const std::int64_t bc = (l.in + 3) / 4;
        std::vector<char> on(static_cast<std::size_t>(((l.out + 3) / 4) * bc));
        for (auto& o : on) o = keep(g);
        for (std::int64_t r = 0; r < l.out; ++r)
          for (std::int64_t c = 0; c < l.in; ++c) {
            const bool kept = blocks ? on[(r / 4) * bc + c / 4] != 0 : keep(g);
            mask.data<std::uint8_t>()[r * l.in + c] = kept;
            wt.data<float>()[r * l.in + c] = kept ? d(g) : 0.f;
          }
        Tensor xt({64, l.in}, DType::f32), bt({l.out}, DType::f32);
        for (std::int64_t i = 0; i < xt.numel(); ++i) xt.data<float>()[i] = d(g);
        for (std::int64_t i = 0; i < bt.numel(); ++i) bt.data<float>()[i] = d(g);
        // The first layer's input is the data: no gradient, as in training.
        Variable x(xt, l.in != 784), w(wt, true), b(bt, true);
        auto block = std::make_shared<const kernels::BlockPattern>(
            kernels::block_pattern(wt.data<float>(), l.out, l.in));
        auto csr = std::make_shared<const kernels::CsrPattern>(
            kernels::csr_pattern(mask.data<std::uint8_t>(), l.out, l.in));
        std::vector<double> dense, sparse;
        for (int r = 0; r < rounds; ++r) {
          dense.push_back(step_ms([&] { return autograd::linear(x, w, b); }, {x, w, b}, 50));
          sparse.push_back(step_ms(
              [&] {
                return blocks ? autograd::block_sparse_linear(x, w, b, block)
                              : autograd::csr_linear(x, w, b, csr);
              },
              {x, w, b}, 50));
        }
        std::printf("%-7s %-10s %7.0f%% %12.4f %12.4f %7.2fx\n", kind, l.name,
                    100 * (blocks ? block->density() : csr->density()), median(dense),
                    median(sparse), median(dense) / median(sparse));
      }
  return 0;
}
