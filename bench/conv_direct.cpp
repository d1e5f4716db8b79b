// One-input-channel-per-group convolutions: our direct kernels against oneDNN (gemm:jit on
// plain NCHW, what every other convolution runs on) on the same buffers, forward and
// backward-weights, for lenet5's first layer and two depthwise layers. Interleaved rounds,
// medians, the ratio printed: the measurement behind conv2d_direct_applies().
// Usage: bench_conv_direct [ROUNDS] [THREADS] [LAYER] (LAYER: run the layers whose name has it)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "timing.hpp"
#include "verdant/core/threading.hpp"
#include "verdant/kernels/conv.hpp"
#include "verdant/kernels/conv_direct.hpp"
#include "verdant/kernels/isa.hpp"

using namespace verdant;
using kernels::ConvGeometry;

using verdant::bench::median;
using verdant::bench::ms_per_call;

namespace {}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 7;
  const int threads = argc > 2 ? std::atoi(argv[2]) : 2;
  const std::string only = argc > 3 ? argv[3] : "";
  set_num_threads(threads);
  std::printf("direct vs oneDNN %s, batch 64, %d threads, %d rounds, ms per call\n",
              kernels::conv_description().c_str(), threads, rounds);
  std::printf("%-28s %-9s %10s %10s %8s\n", "layer", "direction", "oneDNN", "direct", "speedup");
  struct Layer {
    const char* name;
    std::int64_t c, oc, side, k, pad;
  };
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (Layer l : {Layer{"lenet5 conv1 1->20 28x28 k5", 1, 20, 28, 5, 0},
                  Layer{"depthwise 32 28x28 k3 pad1", 32, 32, 28, 3, 1},
                  Layer{"depthwise 64 14x14 k3 pad1", 64, 64, 14, 3, 1}}) {
    if (std::string(l.name).find(only) == std::string::npos) continue;
    ConvGeometry g;
    g.batch = 64;
    g.channels = l.c;
    g.height = g.width = l.side;
    g.kernel_h = g.kernel_w = l.k;
    g.pad_h = g.pad_w = l.pad;
    const std::int64_t groups = l.c;  // one input channel per group
    std::vector<float> x(g.batch * l.c * l.side * l.side), w(l.oc * l.k * l.k), b(l.oc);
    std::vector<float> y(g.batch * l.oc * g.out_h() * g.out_w()), dw(w.size()), db(b.size());
    for (auto* v : {&x, &w, &b, &y}) std::generate(v->begin(), v->end(), [&] { return d(gen); });
    const int reps = 20;
    std::vector<double> t[4];
    for (int r = 0; r < rounds; ++r) {
      t[0].push_back(ms_per_call(
          [&] {
            kernels::conv2d_forward_dnnl(g, l.oc, groups, x.data(), w.data(), b.data(), y.data());
          },
          reps));
      t[1].push_back(ms_per_call(
          [&] { kernels::conv2d_direct_forward(g, l.oc, x.data(), w.data(), b.data(), y.data()); },
          reps));
      t[2].push_back(ms_per_call(
          [&] {
            kernels::conv2d_backward_weights_dnnl(g, l.oc, groups, x.data(), y.data(), dw.data(),
                                                  db.data());
          },
          reps));
      t[3].push_back(ms_per_call(
          [&] {
            kernels::conv2d_direct_backward_weights(g, l.oc, x.data(), y.data(), dw.data(),
                                                    db.data());
          },
          reps));
    }
    const char* dirs[2] = {"forward", "weights"};
    for (int k = 0; k < 2; ++k) {
      const double ours = median(t[2 * k + 1]), peer = median(t[2 * k]);
      std::printf("%-28s %-9s %10.3f %10.3f %7.2fx\n", l.name, dirs[k], peer, ours, peer / ours);
    }
  }
  return 0;
}
