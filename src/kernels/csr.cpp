// CSR training products. The dense operand is held batch-major ([features, n], one contiguous
// row per feature), so every kept weight multiplies a whole run of the batch: the forward pass
// and the input gradient are sums of scaled rows (64 samples, eight vectors, per pass over a
// row's kept weights), the weight gradient is one dot product over the batch per kept weight.
// The weights' values are gathered from the dense tensor on each call: they change every
// optimizer step, and gathering costs one pass over the kept entries.
#include "verdant/kernels/csr.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "simd.hpp"

namespace verdant::kernels {
namespace {

using detail::kLanes;
using detail::transpose;
using detail::v8;

constexpr std::int64_t kVectors = 8;  // vectors of the batch held in registers at once

// out[0, n) = init + sum_t vals[t] * in[idx[t] * n + (0, n)].
VERDANT_CLONES
void scaled_row_sum(const float* vals, const std::uint32_t* idx, std::uint32_t count,
                    const float* in, std::int64_t n, float init, float* out) {
  std::int64_t k = 0;
  for (; k + kVectors * kLanes <= n; k += kVectors * kLanes) {
    v8 acc[kVectors];
    for (auto& a : acc) a = v8{} + init;
    for (std::uint32_t t = 0; t < count; ++t) {
      const float v = vals[t];
      const float* src = in + std::int64_t{idx[t]} * n + k;
#pragma GCC unroll 8
      for (std::int64_t u = 0; u < kVectors; ++u) acc[u] += v * VERDANT_LOAD(src + u * kLanes);
    }
#pragma GCC unroll 8
    for (std::int64_t u = 0; u < kVectors; ++u) VERDANT_STORE(out + k + u * kLanes, acc[u]);
  }
  for (; k + kLanes <= n; k += kLanes) {
    v8 acc = v8{} + init;
    for (std::uint32_t t = 0; t < count; ++t)
      acc += vals[t] * VERDANT_LOAD(in + std::int64_t{idx[t]} * n + k);
    VERDANT_STORE(out + k, acc);
  }
  for (; k < n; ++k) {  // batch tail
    float acc = init;
    for (std::uint32_t t = 0; t < count; ++t) acc += vals[t] * in[std::int64_t{idx[t]} * n + k];
    out[k] = acc;
  }
}

// out[0..7] = the sums of s[0..7]'s lanes: three rounds of pairwise adds. (Through a pointer,
// not a returned vector: a vector return from outside a clone would change the ABI.)
inline void lane_sums(const v8* s, v8* out) {
  v8 t[4], u[2];
  for (int i = 0; i < 4; ++i)
    t[i] = __builtin_shufflevector(s[2 * i], s[2 * i + 1], 0, 8, 2, 10, 4, 12, 6, 14) +
           __builtin_shufflevector(s[2 * i], s[2 * i + 1], 1, 9, 3, 11, 5, 13, 7, 15);
  for (int i = 0; i < 2; ++i)
    u[i] = __builtin_shufflevector(t[2 * i], t[2 * i + 1], 0, 1, 8, 9, 4, 5, 12, 13) +
           __builtin_shufflevector(t[2 * i], t[2 * i + 1], 2, 3, 10, 11, 6, 7, 14, 15);
  *out = __builtin_shufflevector(u[0], u[1], 0, 1, 2, 3, 8, 9, 10, 11) +
         __builtin_shufflevector(u[0], u[1], 4, 5, 6, 7, 12, 13, 14, 15);
}

// out[t] = sum_k a[k] * in[idx[t] * n + k] for each of the `count` listed rows of in, eight
// rows at a time: eight independent accumulators, reduced together at the end.
VERDANT_CLONES
void row_dots(const float* a, const std::uint32_t* idx, std::uint32_t count, const float* in,
              std::int64_t n, float* out) {
  for (std::uint32_t t = 0; t < count; t += kLanes) {
    const std::uint32_t m = std::min<std::uint32_t>(kLanes, count - t);
    const float* b[kLanes];
    for (std::uint32_t j = 0; j < kLanes; ++j)  // a short group repeats its last row
      b[j] = in + std::int64_t{idx[t + std::min(j, m - 1)]} * n;
    v8 s[kLanes] = {};
    std::int64_t k = 0;
    for (; k + kLanes <= n; k += kLanes) {
      const v8 av = VERDANT_LOAD(a + k);
#pragma GCC unroll 8
      for (std::int64_t j = 0; j < kLanes; ++j) s[j] += av * VERDANT_LOAD(b[j] + k);
    }
    v8 sums;
    lane_sums(s, &sums);
    for (std::uint32_t j = 0; j < m; ++j) {
      float r = sums[j];
      for (std::int64_t i = k; i < n; ++i) r += a[i] * b[j][i];  // batch tail
      out[t + j] = r;
    }
  }
}

// Scratch whose every element is written before it is read: no clearing pass.
std::unique_ptr<float[]> scratch(std::int64_t n) {
  return std::unique_ptr<float[]>(new float[static_cast<std::size_t>(n)]);
}

bool parallel_worth(const CsrPattern& p, std::int64_t n) {
  return !omp_in_parallel() && omp_get_max_threads() > 1 && p.nnz() * n >= (1 << 16);
}

// in [rows, cols] -> out [cols, rows], split over the team by bands of 64 columns: at high
// sparsity the transpositions around the products are a sizeable share of a layer's time.
void transpose_split(const float* in, std::int64_t rows, std::int64_t cols, float* out) {
  constexpr std::int64_t kBand = 64;
  const bool worth = !omp_in_parallel() && omp_get_max_threads() > 1 && rows * cols >= (1 << 15);
#pragma omp parallel for schedule(static) if (worth)
  for (std::int64_t c0 = 0; c0 < cols; c0 += kBand)
    transpose(in + c0, rows, std::min(kBand, cols - c0), cols, out + c0 * rows, rows);
}

}  // namespace

double CsrPattern::density() const {
  const std::int64_t all = rows * cols;
  return all ? static_cast<double>(nnz()) / static_cast<double>(all) : 0.0;
}

CsrPattern csr_pattern(const std::uint8_t* mask, std::int64_t rows, std::int64_t cols) {
  CsrPattern p;
  p.rows = rows;
  p.cols = cols;
  p.row_ptr.assign(1, 0);
  for (std::int64_t r = 0; r < rows; ++r) {
    for (std::int64_t c = 0; c < cols; ++c)
      if (mask[r * cols + c] != 0) p.col.push_back(static_cast<std::uint32_t>(c));
    p.row_ptr.push_back(static_cast<std::uint32_t>(p.col.size()));
  }
  detail::column_index(p.row_ptr, p.col, cols, p.col_ptr, p.by_col);
  p.col_rows.resize(p.col.size());
  std::vector<std::uint32_t> row_of(p.col.size());
  for (std::int64_t r = 0; r < rows; ++r)
    for (std::uint32_t j = p.row_ptr[r]; j < p.row_ptr[r + 1]; ++j)
      row_of[j] = static_cast<std::uint32_t>(r);
  for (std::size_t t = 0; t < p.by_col.size(); ++t) p.col_rows[t] = row_of[p.by_col[t]];
  return p;
}

void batch_major(const float* x, std::int64_t n, std::int64_t cols, float* xt) {
  transpose_split(x, n, cols, xt);
}

void csr_forward(const CsrPattern& p, const float* w, const float* bias, const float* xt,
                 std::int64_t n, float* y) {
  const auto vals = scratch(p.nnz());
  const auto yt = scratch(p.rows * n);
  // Each thread gathers the values of the rows it sums: the gather reads the whole dense
  // weight, a pass as long as the sums themselves at high sparsity.
#pragma omp parallel for schedule(static) if (parallel_worth(p, n))
  for (std::int64_t r = 0; r < p.rows; ++r) {
    const std::uint32_t begin = p.row_ptr[r], end = p.row_ptr[r + 1];
    for (std::uint32_t j = begin; j < end; ++j) vals[j] = w[r * p.cols + p.col[j]];
    scaled_row_sum(vals.get() + begin, p.col.data() + begin, end - begin, xt, n,
                   bias != nullptr ? bias[r] : 0.f, yt.get() + r * n);
  }
  transpose_split(yt.get(), p.rows, n, y);
}

void csr_backward(const CsrPattern& p, const float* w, const float* xt, const float* dy,
                  std::int64_t n, float* dx, float* dw) {
  const auto dyt = scratch(p.rows * n);
  batch_major(dy, n, p.rows, dyt.get());
  if (dx != nullptr) {
    const auto vals = scratch(p.nnz());  // in column order
    const auto dxt = scratch(p.cols * n);
#pragma omp parallel for schedule(static) if (parallel_worth(p, n))
    for (std::int64_t c = 0; c < p.cols; ++c) {
      const std::uint32_t begin = p.col_ptr[c], end = p.col_ptr[c + 1];
      for (std::uint32_t t = begin; t < end; ++t)
        vals[t] = w[std::int64_t{p.col_rows[t]} * p.cols + c];
      scaled_row_sum(vals.get() + begin, p.col_rows.data() + begin, end - begin, dyt.get(), n, 0.f,
                     dxt.get() + c * n);
    }
    transpose_split(dxt.get(), p.cols, n, dx);
  }
  if (dw != nullptr) {
    const auto g = scratch(p.nnz());
    // Each row of dw is cleared by the thread that fills it: the clearing is most of the
    // memory traffic at high sparsity.
#pragma omp parallel for schedule(static) if (parallel_worth(p, n))
    for (std::int64_t r = 0; r < p.rows; ++r) {
      const std::uint32_t begin = p.row_ptr[r], count = p.row_ptr[r + 1] - begin;
      row_dots(dyt.get() + r * n, p.col.data() + begin, count, xt, n, g.get() + begin);
      float* row = dw + r * p.cols;
      std::memset(row, 0, sizeof(float) * static_cast<std::size_t>(p.cols));
      for (std::uint32_t j = begin; j < begin + count; ++j) row[p.col[j]] = g[j];
    }
  }
}

}  // namespace verdant::kernels
