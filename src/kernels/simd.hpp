#pragma once
// What our training kernels (sparse, direct conv, im2col per image) share: GCC vector types of
// eight floats, the clone attribute that adds an AVX2 + FMA build of a hot loop chosen at load time
// (the library otherwise targets baseline x86-64), the transposition that puts the batch on the
// unit-stride axis, and the column index of a row-major pattern.
#include <cstdint>
#include <vector>

#include "verdant/core/clones.hpp"

namespace verdant::kernels::detail {

typedef float v8 __attribute__((vector_size(32)));
typedef float v8u __attribute__((vector_size(32), aligned(4)));  // unaligned loads and stores
constexpr std::int64_t kLanes = 8;

// Inlined into each clone, so they compile to that clone's vector instructions.
#define VERDANT_LOAD(p) (*reinterpret_cast<const ::verdant::kernels::detail::v8u*>(p))
#define VERDANT_STORE(p, v) (*reinterpret_cast<::verdant::kernels::detail::v8u*>(p) = (v))

// out[c, r] = in[r, c] for an [rows, cols] matrix with row strides ld_in and ld_out: 8x8
// blocks through registers, scalar at the ragged edges.
void transpose(const float* in, std::int64_t rows, std::int64_t cols, std::int64_t ld_in,
               float* out, std::int64_t ld_out);

// The column-major index of a row-major sparse pattern (row_ptr, col over `cols` columns):
// col_ptr [cols + 1] and, for each entry in column order, its row-major index.
inline void column_index(const std::vector<std::uint32_t>& row_ptr,
                         const std::vector<std::uint32_t>& col, std::int64_t cols,
                         std::vector<std::uint32_t>& col_ptr, std::vector<std::uint32_t>& by_col) {
  col_ptr.assign(static_cast<std::size_t>(cols) + 1, 0);
  for (std::uint32_t c : col) ++col_ptr[c + 1];
  for (std::int64_t c = 0; c < cols; ++c) col_ptr[c + 1] += col_ptr[c];
  by_col.resize(col.size());
  std::vector<std::uint32_t> fill(col_ptr.begin(), col_ptr.end() - 1);
  for (std::size_t r = 0; r + 1 < row_ptr.size(); ++r)
    for (std::uint32_t j = row_ptr[r]; j < row_ptr[r + 1]; ++j) by_col[fill[col[j]]++] = j;
}

}  // namespace verdant::kernels::detail
