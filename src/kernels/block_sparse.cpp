// Block-sparse products. Activations are transposed to [features, n] (one contiguous row per
// feature, rows padded to whole blocks) so that the inner loops run over the batch with unit
// stride, eight samples at a time, with a block row's four outputs (or a block column's four
// inputs) held in registers across all of its blocks. The weights are packed into 16-float
// blocks (zero-padded at ragged edges) on each call: they change every optimizer step, and
// packing costs one pass over the stored blocks.
#include "verdant/kernels/block_sparse.hpp"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "simd.hpp"

namespace verdant::kernels {
namespace {

using detail::transpose;
using detail::v8;

constexpr std::int64_t B = BlockPattern::kBlock;
constexpr std::int64_t L = detail::kLanes;

// x [n, features] -> [4 * blocks, n], the padding rows zero.
std::vector<float> transposed_padded(const float* x, std::int64_t n, std::int64_t features,
                                     std::int64_t blocks) {
  std::vector<float> t(static_cast<std::size_t>(blocks * B * n), 0.f);
  transpose(x, n, features, features, t.data(), n);
  return t;
}

// The pattern's blocks of w, 16 floats each (row-major in the block), zero outside w.
std::vector<float> pack_blocks(const BlockPattern& p, const float* w) {
  std::vector<float> packed(static_cast<std::size_t>(p.blocks() * B * B), 0.f);
  for (std::int64_t b = 0; b < p.block_rows(); ++b)
    for (std::uint32_t j = p.row_ptr[b]; j < p.row_ptr[b + 1]; ++j)
      for (std::int64_t i = 0; i < B && b * B + i < p.rows; ++i)
        for (std::int64_t c = 0; c < B && p.col[j] * B + c < p.cols; ++c)
          packed[j * B * B + i * B + c] = w[(b * B + i) * p.cols + p.col[j] * B + c];
  return packed;
}

// out rows [4 * g, 4 * g + 4) of an [*, n] matrix: for each of the `count` blocks listed in
// `ids`, out_i += sum_c blk[i][c] * in_{4 * other(block) + c} (forward: blocks of a block row,
// in = x^T) or the transposed block (backward: blocks of a block column, in = dy^T).
VERDANT_CLONES
void block_row_product(const float* packed, const std::uint32_t* ids, std::uint32_t count,
                       const std::uint32_t* other, bool transposed, const float* in, std::int64_t n,
                       const float* init, float* out) {
  std::int64_t k = 0;
  for (; k + L <= n; k += L) {
    v8 a0 = {}, a1 = {}, a2 = {}, a3 = {};
    if (init != nullptr) a0 += init[0], a1 += init[1], a2 += init[2], a3 += init[3];
    for (std::uint32_t t = 0; t < count; ++t) {
      const std::uint32_t j = ids != nullptr ? ids[t] : t;
      const float* blk = packed + j * B * B;
      const float* src = in + std::int64_t{other[j]} * B * n + k;
      const v8 x0 = VERDANT_LOAD(src), x1 = VERDANT_LOAD(src + n), x2 = VERDANT_LOAD(src + 2 * n),
               x3 = VERDANT_LOAD(src + 3 * n);
      if (!transposed) {
        a0 += blk[0] * x0 + blk[1] * x1 + blk[2] * x2 + blk[3] * x3;
        a1 += blk[4] * x0 + blk[5] * x1 + blk[6] * x2 + blk[7] * x3;
        a2 += blk[8] * x0 + blk[9] * x1 + blk[10] * x2 + blk[11] * x3;
        a3 += blk[12] * x0 + blk[13] * x1 + blk[14] * x2 + blk[15] * x3;
      } else {
        a0 += blk[0] * x0 + blk[4] * x1 + blk[8] * x2 + blk[12] * x3;
        a1 += blk[1] * x0 + blk[5] * x1 + blk[9] * x2 + blk[13] * x3;
        a2 += blk[2] * x0 + blk[6] * x1 + blk[10] * x2 + blk[14] * x3;
        a3 += blk[3] * x0 + blk[7] * x1 + blk[11] * x2 + blk[15] * x3;
      }
    }
    VERDANT_STORE(out + k, a0);
    VERDANT_STORE(out + n + k, a1);
    VERDANT_STORE(out + 2 * n + k, a2);
    VERDANT_STORE(out + 3 * n + k, a3);
  }
  for (; k < n; ++k)  // batch tail
    for (std::int64_t i = 0; i < B; ++i) {
      float acc = init != nullptr ? init[i] : 0.f;
      for (std::uint32_t t = 0; t < count; ++t) {
        const std::uint32_t j = ids != nullptr ? ids[t] : t;
        const float* src = in + std::int64_t{other[j]} * B * n + k;
        for (std::int64_t c = 0; c < B; ++c)
          acc += packed[j * B * B + (transposed ? c * B + i : i * B + c)] * src[c * n];
      }
      out[i * n + k] = acc;
    }
}

// dw block = dy_rows^T x_cols over the batch: 16 dot products of length n.
VERDANT_CLONES
void block_gradient(const float* dyt, const float* xt, std::int64_t n, float* g) {
  for (std::int64_t h = 0; h < 2; ++h) {  // two rows at a time: 8 accumulators in registers
    const float* d0 = dyt + 2 * h * n;
    const float* d1 = d0 + n;
    v8 acc[2][4] = {};
    std::int64_t k = 0;
    for (; k + L <= n; k += L) {
      const v8 y0 = VERDANT_LOAD(d0 + k), y1 = VERDANT_LOAD(d1 + k);
      for (std::int64_t c = 0; c < B; ++c) {
        const v8 xv = VERDANT_LOAD(xt + c * n + k);
        acc[0][c] += y0 * xv;
        acc[1][c] += y1 * xv;
      }
    }
    for (std::int64_t i = 0; i < 2; ++i)
      for (std::int64_t c = 0; c < B; ++c) {
        const v8 a = acc[i][c];
        float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
        for (std::int64_t t = k; t < n; ++t) s += (i ? d1 : d0)[t] * xt[c * n + t];
        g[(2 * h + i) * B + c] = s;
      }
  }
}

bool parallel_worth(const BlockPattern& p, std::int64_t n) {
  return !omp_in_parallel() && omp_get_max_threads() > 1 && p.blocks() * B * B * n >= (1 << 17);
}

}  // namespace

double BlockPattern::density() const {
  const std::int64_t all = block_rows() * block_cols();
  return all ? static_cast<double>(blocks()) / static_cast<double>(all) : 0.0;
}

template <typename T>
static BlockPattern pattern_of(const T* w, std::int64_t rows, std::int64_t cols) {
  BlockPattern p;
  p.rows = rows;
  p.cols = cols;
  p.row_ptr.assign(1, 0);
  const std::int64_t br = p.block_rows(), bc = p.block_cols();
  for (std::int64_t b = 0; b < br; ++b) {
    for (std::int64_t c = 0; c < bc; ++c) {
      bool any = false;
      for (std::int64_t r = b * B; r < std::min(rows, (b + 1) * B) && !any; ++r)
        for (std::int64_t k = c * B; k < std::min(cols, (c + 1) * B) && !any; ++k)
          any = w[r * cols + k] != T{0};
      if (any) p.col.push_back(static_cast<std::uint32_t>(c));
    }
    p.row_ptr.push_back(static_cast<std::uint32_t>(p.col.size()));
  }
  detail::column_index(p.row_ptr, p.col, bc, p.col_ptr, p.by_col);
  p.row_of.resize(p.col.size());
  for (std::int64_t b = 0; b < br; ++b)
    for (std::uint32_t j = p.row_ptr[b]; j < p.row_ptr[b + 1]; ++j)
      p.row_of[j] = static_cast<std::uint32_t>(b);
  return p;
}

BlockPattern block_pattern(const float* w, std::int64_t rows, std::int64_t cols) {
  return pattern_of(w, rows, cols);
}

BlockPattern block_pattern(const std::uint8_t* mask, std::int64_t rows, std::int64_t cols) {
  return pattern_of(mask, rows, cols);
}

void block_sparse_forward(const BlockPattern& p, const float* w, const float* bias, const float* x,
                          std::int64_t n, float* y) {
  const std::vector<float> packed = pack_blocks(p, w);
  const std::vector<float> xt = transposed_padded(x, n, p.cols, p.block_cols());
  const std::int64_t br = p.block_rows();
  std::vector<float> yt(static_cast<std::size_t>(br * B * n));
  std::vector<float> bias_padded(static_cast<std::size_t>(br * B), 0.f);
  if (bias != nullptr) std::copy_n(bias, p.rows, bias_padded.begin());
#pragma omp parallel for schedule(static) if (parallel_worth(p, n))
  for (std::int64_t b = 0; b < br; ++b)
    block_row_product(packed.data() + p.row_ptr[b] * B * B, nullptr,
                      p.row_ptr[b + 1] - p.row_ptr[b], p.col.data() + p.row_ptr[b], false,
                      xt.data(), n, bias_padded.data() + b * B, yt.data() + b * B * n);
  transpose(yt.data(), p.rows, n, n, y, p.rows);
}

void block_sparse_backward(const BlockPattern& p, const float* w, const float* x, const float* dy,
                           std::int64_t n, float* dx, float* dw) {
  const std::vector<float> dyt = transposed_padded(dy, n, p.rows, p.block_rows());
  if (dx != nullptr) {
    const std::vector<float> packed = pack_blocks(p, w);
    const std::int64_t bc = p.block_cols();
    std::vector<float> dxt(static_cast<std::size_t>(bc * B * n));
    // By block column: each iteration owns four rows of dx^T.
#pragma omp parallel for schedule(static) if (parallel_worth(p, n))
    for (std::int64_t c = 0; c < bc; ++c)
      block_row_product(packed.data(), p.by_col.data() + p.col_ptr[c],
                        p.col_ptr[c + 1] - p.col_ptr[c], p.row_of.data(), true, dyt.data(), n,
                        nullptr, dxt.data() + c * B * n);
    transpose(dxt.data(), p.cols, n, n, dx, p.cols);
  }
  if (dw != nullptr) {
    const std::vector<float> xt = transposed_padded(x, n, p.cols, p.block_cols());
    std::memset(dw, 0, sizeof(float) * static_cast<std::size_t>(p.rows * p.cols));
    const std::int64_t br = p.block_rows();
#pragma omp parallel for schedule(static) if (parallel_worth(p, n))
    for (std::int64_t b = 0; b < br; ++b)
      for (std::uint32_t j = p.row_ptr[b]; j < p.row_ptr[b + 1]; ++j) {
        float g[B * B];
        block_gradient(dyt.data() + b * B * n, xt.data() + std::int64_t{p.col[j]} * B * n, n, g);
        for (std::int64_t i = 0; i < B && b * B + i < p.rows; ++i)
          for (std::int64_t c = 0; c < B && p.col[j] * B + c < p.cols; ++c)
            dw[(b * B + i) * p.cols + p.col[j] * B + c] = g[i * B + c];
      }
  }
}

}  // namespace verdant::kernels
