// Dense products at our layers' shapes (batch 64, 2 threads): oneDNN's sgemm, the backend,
// against OpenBLAS split over the same threads, the backend before it. Interleaved rounds,
// medians, the ratio printed: the measurement behind kernels::sgemm's choice.
// Usage: bench_gemm [ROUNDS] [THREADS]
#include <cstdio>
#include <cstdlib>
#include <random>
#include <vector>

#include "timing.hpp"
#include "verdant/core/threading.hpp"
#include "verdant/kernels/gemm.hpp"
#include "verdant/kernels/isa.hpp"

using namespace verdant;
using verdant::bench::median;
using verdant::bench::ms_per_call;

int main(int argc, char** argv) {
  const auto [rounds, threads] = bench::rounds_and_threads(argc, argv, 9);
  std::printf("oneDNN sgemm vs OpenBLAS split over %d threads; %s; %d rounds, ms per call\n",
              threads, kernels::blas_description().c_str(), rounds);
  std::printf("%-44s %10s %10s %8s\n", "product (M x N x K)", "OpenBLAS", "oneDNN", "speedup");
  struct Product {
    const char* name;
    bool ta, tb;
    std::int64_t m, n, k;
  };
  std::mt19937 gen(7);
  std::uniform_real_distribution<float> d(-1.f, 1.f);
  for (Product p : {Product{"lenet5 fc1 forward", false, true, 64, 500, 800},
                    Product{"lenet5 fc1 input gradient", false, false, 64, 800, 500},
                    Product{"lenet5 fc1 weight gradient", true, false, 500, 800, 64},
                    Product{"mlp fc1 forward", false, true, 64, 300, 784},
                    Product{"mlp fc1 weight gradient", true, false, 300, 784, 64},
                    Product{"batch 1, 1000 x 784", false, true, 1, 1000, 784},
                    Product{"square 1024", false, false, 1024, 1024, 1024},
                    Product{"wide 256 x 4096 x 1024", false, true, 256, 4096, 1024}}) {
    std::vector<float> a(p.m * p.k), b(p.k * p.n), c(p.m * p.n);
    for (float& v : a) v = d(gen);
    for (float& v : b) v = d(gen);
    const std::int64_t lda = p.ta ? p.m : p.k, ldb = p.tb ? p.k : p.n;
    const int reps = p.m * p.n * p.k > (1 << 26) ? 3 : 30;
    auto run = [&](auto gemm) {
      return ms_per_call(
          [&] {
            gemm(p.ta, p.tb, p.m, p.n, p.k, 1.f, a.data(), lda, b.data(), ldb, 0.f, c.data(), p.n);
          },
          reps);
    };
    std::vector<double> openblas, onednn;
    for (int r = 0; r < rounds; ++r) {
      openblas.push_back(run(kernels::sgemm_openblas));
      onednn.push_back(run(kernels::sgemm));
    }
    char label[96];
    std::snprintf(label, sizeof label, "%s (%lld x %lld x %lld)", p.name,
                  static_cast<long long>(p.m), static_cast<long long>(p.n),
                  static_cast<long long>(p.k));
    std::printf("%-44s %10.3f %10.3f %7.2fx\n", label, median(openblas), median(onednn),
                median(openblas) / median(onednn));
  }
}
