#include "verdant/kernels/gemm.hpp"

#include <cblas.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <cstdlib>
#include <string>

#include "verdant/core/error.hpp"
#include "verdant/kernels/isa.hpp"

namespace verdant::kernels {

namespace {

void blas_call(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
               float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
               float beta, float* c, std::int64_t ldc) {
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
              trans_b ? CblasTrans : CblasNoTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda), b,
              static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}

// VERDANT_GEMM=openblas: dense products through OpenBLAS instead of oneDNN (dnnl, the default).
bool openblas_forced() {
  static const bool forced = [] {
    const char* v = std::getenv("VERDANT_GEMM");
    if (v == nullptr || *v == '\0' || std::string(v) == "dnnl") return false;
    if (std::string(v) == "openblas") return true;
    throw Error("VERDANT_GEMM must be dnnl or openblas, got '" + std::string(v) + "'");
  }();
  return forced;
}

// An empty C, or k == 0 (C = beta * C, which BLAS would leave untouched): done here.
bool without_products(std::int64_t m, std::int64_t n, std::int64_t k, float beta, float* c,
                      std::int64_t ldc) {
  if (m == 0 || n == 0) return true;
  if (k != 0) return false;
  for (std::int64_t i = 0; i < m; ++i)
    for (std::int64_t j = 0; j < n; ++j) c[i * ldc + j] = beta == 0.f ? 0.f : beta * c[i * ldc + j];
  return true;
}

// Below this many multiply-adds one thread is faster than waking a second one.
constexpr std::int64_t kSplitMinMacs = 1 << 18;

}  // namespace

void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc) {
  if (without_products(m, n, k, beta, c, ldc)) return;
  if (openblas_forced()) {
    sgemm_openblas(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // oneDNN's sgemm threads over our own OpenMP team (one pool), and runs on one thread inside
  // a parallel region.
  if (dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c,
                 ldc) != dnnl_success)
    throw Error("sgemm: oneDNN's sgemm failed");
}

void sgemm_openblas(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                    float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
                    float beta, float* c, std::int64_t ldc) {
  if (without_products(m, n, k, beta, c, ldc)) return;
  // One thread pool only: OpenBLAS runs single-threaded inside our OpenMP team. Two pools
  // (OpenBLAS's pthreads and OpenMP) spinning against each other on two cores cost more
  // than the GEMMs themselves: measured on lenet5 train steps, 2 threads, ~150 ms/step with
  // OpenBLAS threading versus ~25-33 ms/step with this split.
  if (openblas_get_num_threads() != 1) openblas_set_num_threads(1);
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads <= 1 || m * n * k < kSplitMinMacs) {
    blas_call(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // Split C into column blocks (or row blocks when C is tall), one per thread.
  const bool split_rows = m > n;
  const std::int64_t extent = split_rows ? m : n;
  const int parts = static_cast<int>(std::min<std::int64_t>(threads, extent));
#pragma omp parallel num_threads(parts)
  {
    const int t = omp_get_thread_num();
    const std::int64_t lo = extent * t / parts, hi = extent * (t + 1) / parts;
    if (hi > lo) {
      if (split_rows) {
        const float* a_blk = trans_a ? a + lo : a + lo * lda;
        blas_call(trans_a, trans_b, hi - lo, n, k, alpha, a_blk, lda, b, ldb, beta, c + lo * ldc,
                  ldc);
      } else {
        const float* b_blk = trans_b ? b + lo * ldb : b + lo;
        blas_call(trans_a, trans_b, m, hi - lo, k, alpha, a, lda, b_blk, ldb, beta, c + lo, ldc);
      }
    }
  }
}

void sgemm_reference(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                     float alpha, const float* a, std::int64_t lda, const float* b,
                     std::int64_t ldb, float beta, float* c, std::int64_t ldc) {
  for (std::int64_t i = 0; i < m; ++i) {
    for (std::int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (std::int64_t p = 0; p < k; ++p) {
        double av = trans_a ? a[p * lda + i] : a[i * lda + p];
        double bv = trans_b ? b[j * ldb + p] : b[p * ldb + j];
        acc += av * bv;
      }
      double old = beta == 0.f ? 0.0 : static_cast<double>(beta) * c[i * ldc + j];
      c[i * ldc + j] = static_cast<float>(alpha * acc + old);
    }
  }
}

}  // namespace verdant::kernels

namespace verdant::kernels {

std::string blas_description() {
  if (!openblas_forced()) {
    const dnnl_version_t* v = dnnl_version();
    return "dense oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + " sgemm";
  }
  // openblas_get_config() starts "OpenBLAS <version> ..."; keep those two words.
  std::string config = openblas_get_config();
  const auto first = config.find(' ');
  const auto second = first == std::string::npos ? first : config.find(' ', first + 1);
  return "dense " + config.substr(0, second) + " (core " + openblas_get_corename() +
         ", VERDANT_GEMM)";
}

std::string training_kernels() {
  return blas_description() + "; " + conv_description() + "; " + own_kernels_description();
}

}  // namespace verdant::kernels
