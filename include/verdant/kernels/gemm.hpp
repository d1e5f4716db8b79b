#pragma once
// Dense matrix multiply over oneDNN's sgemm (OpenBLAS with VERDANT_GEMM=openblas), plus a plain
// reference twin used by the tests.
#include <cstdint>

namespace verdant::kernels {

// C[M,N] = alpha * op(A) * op(B) + beta * C, all row-major. op(X) is X or X^T.
// lda/ldb/ldc are row strides of A, B, C as stored (A is [M,K] or, transposed, [K,M]).
// beta == 0 overwrites C (NaNs in C are not propagated), like BLAS.
void sgemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc);

// The same contract through OpenBLAS, split over our threads (each OpenBLAS call on one): the
// backend before oneDNN's, 1.1-1.4x slower at our layer shapes (build/bench/bench_gemm).
void sgemm_openblas(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                    float alpha, const float* a, std::int64_t lda, const float* b, std::int64_t ldb,
                    float beta, float* c, std::int64_t ldc);

// The same contract, written as plain loops (double accumulation). For tests only.
void sgemm_reference(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k,
                     float alpha, const float* a, std::int64_t lda, const float* b,
                     std::int64_t ldb, float beta, float* c, std::int64_t ldc);

}  // namespace verdant::kernels
