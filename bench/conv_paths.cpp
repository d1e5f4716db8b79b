// Our convolution kernels against oneDNN's primitives (gemm:jit on plain NCHW) on the same
// buffers, for the layers each of ours takes: the direct kernels for one input channel per
// group (lenet5's first layer, depthwise; forward and weights, the data gradient stays on
// oneDNN) and the per-image im2col + GEMM for ungrouped stride-1 layers (lenet5's second
// layer, 3x3 layers with and without padding; all three directions). Interleaved rounds, medians,
// the ratio printed: the measurements behind conv2d_direct_applies() and conv2d_gemm_applies().
// Usage: bench_conv_paths [ROUNDS] [THREADS] [LAYER] (LAYER: run the layers whose name has it)
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "timing.hpp"
#include "verdant/core/threading.hpp"
#include "verdant/kernels/conv.hpp"
#include "verdant/kernels/conv_direct.hpp"
#include "verdant/kernels/conv_gemm.hpp"
#include "verdant/kernels/isa.hpp"

using namespace verdant;
using kernels::ConvGeometry;

using verdant::bench::median;
using verdant::bench::ms_per_call;

int main(int argc, char** argv) {
  const auto [rounds, threads] = bench::rounds_and_threads(argc, argv, 7);
  const std::string only = argc > 3 ? argv[3] : "";
  std::printf("ours vs oneDNN primitives; %s; %s; batch 64, %d threads, %d rounds, ms per call\n",
              kernels::conv_description().c_str(), kernels::own_kernels_description().c_str(),
              threads, rounds);
  std::printf("%-30s %-8s %-9s %10s %10s %8s\n", "layer", "ours", "direction", "oneDNN", "ours",
              "speedup");
  struct Layer {
    const char* name;
    std::int64_t c, oc, side, k, pad, groups;
  };
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (Layer l : {Layer{"lenet5 conv1 1->20 28x28 k5", 1, 20, 28, 5, 0, 1},
                  Layer{"depthwise 32 28x28 k3 pad1", 32, 32, 28, 3, 1, 32},
                  Layer{"depthwise 64 14x14 k3 pad1", 64, 64, 14, 3, 1, 64},
                  Layer{"lenet5 conv2 20->50 12x12 k5", 20, 50, 12, 5, 0, 1},
                  Layer{"3x3 32->64 16x16", 32, 64, 16, 3, 0, 1},
                  Layer{"3x3 32->64 16x16 pad1", 32, 64, 16, 3, 1, 1}}) {
    if (std::string(l.name).find(only) == std::string::npos) continue;
    ConvGeometry g;
    g.batch = 64;
    g.channels = l.c;
    g.height = g.width = l.side;
    g.kernel_h = g.kernel_w = l.k;
    g.pad_h = g.pad_w = l.pad;
    const std::int64_t oc = l.oc, groups = l.groups;
    std::vector<float> x(g.batch * l.c * l.side * l.side), w(oc * l.c / groups * l.k * l.k), b(oc);
    std::vector<float> y(g.batch * oc * g.out_h() * g.out_w()), dx(x.size()), dw(w.size()),
        db(b.size());
    for (auto* v : {&x, &w, &b, &y}) std::generate(v->begin(), v->end(), [&] { return d(gen); });
    // Each direction: oneDNN's primitive, then ours.
    struct Direction {
      const char* name;
      std::function<void()> peer, ours;
    };
    std::vector<Direction> dirs;
    const char* which = "";
    if (kernels::conv2d_direct_applies(g, oc, groups)) {
      which = "direct";
      dirs.push_back(
          {"forward",
           [&] {
             kernels::conv2d_forward_dnnl(g, oc, groups, x.data(), w.data(), b.data(), y.data());
           },
           [&] { kernels::conv2d_direct_forward(g, oc, x.data(), w.data(), b.data(), y.data()); }});
      dirs.push_back({"weights",
                      [&] {
                        kernels::conv2d_backward_weights_dnnl(g, oc, groups, x.data(), y.data(),
                                                              dw.data(), db.data());
                      },
                      [&] {
                        kernels::conv2d_direct_backward_weights(g, oc, x.data(), y.data(),
                                                                dw.data(), db.data());
                      }});
    } else if (kernels::conv2d_gemm_applies(g, groups)) {
      which = "per-image";
      dirs.push_back(
          {"forward",
           [&] {
             kernels::conv2d_forward_dnnl(g, oc, groups, x.data(), w.data(), b.data(), y.data());
           },
           [&] { kernels::conv2d_gemm_forward(g, oc, x.data(), w.data(), b.data(), y.data()); }});
      dirs.push_back(
          {"data",
           [&] {
             kernels::conv2d_backward_data_dnnl(g, oc, groups, w.data(), y.data(), dx.data());
           },
           [&] { kernels::conv2d_gemm_backward_data(g, oc, w.data(), y.data(), dx.data()); }});
      dirs.push_back({"weights",
                      [&] {
                        kernels::conv2d_backward_weights_dnnl(g, oc, groups, x.data(), y.data(),
                                                              dw.data(), db.data());
                      },
                      [&] {
                        kernels::conv2d_gemm_backward_weights(g, oc, x.data(), y.data(), dw.data(),
                                                              db.data());
                      }});
    }
    const int reps = 20;
    std::vector<std::vector<double>> peer(dirs.size()), ours(dirs.size());
    for (int r = 0; r < rounds; ++r)
      for (std::size_t i = 0; i < dirs.size(); ++i) {
        peer[i].push_back(ms_per_call(dirs[i].peer, reps));
        ours[i].push_back(ms_per_call(dirs[i].ours, reps));
      }
    for (std::size_t i = 0; i < dirs.size(); ++i) {
      const double o = median(ours[i]), p = median(peer[i]);
      std::printf("%-30s %-8s %-9s %10.3f %10.3f %7.2fx\n", l.name, which, dirs[i].name, p, o,
                  p / o);
    }
  }
  return 0;
}
