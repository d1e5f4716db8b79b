#pragma once
// Block-sparse matrix products for training layers pruned in 4x4 blocks: only the stored
// blocks of the weight are multiplied, so the work falls with the block density. The dense
// reference is sgemm on the same weights with zeros outside the blocks (tests compare them).
#include <cstdint>
#include <vector>

namespace verdant::kernels {

// The non-zero 4x4 blocks of a [rows, cols] weight (ragged blocks at the edges), by block row
// (row_ptr/col) and, for the transposed product, by block column (col_ptr/row/index).
struct BlockPattern {
  static constexpr std::int64_t kBlock = 4;
  std::int64_t rows = 0, cols = 0;
  std::vector<std::uint32_t> row_ptr;  // [block rows + 1]
  std::vector<std::uint32_t> col;      // block column of each block, increasing in a block row
  std::vector<std::uint32_t> col_ptr;  // [block cols + 1]
  std::vector<std::uint32_t> by_col;   // block indices grouped by block column
  std::vector<std::uint32_t> row_of;   // block row of each block
  std::int64_t blocks() const { return static_cast<std::int64_t>(col.size()); }
  std::int64_t block_rows() const { return (rows + kBlock - 1) / kBlock; }
  std::int64_t block_cols() const { return (cols + kBlock - 1) / kBlock; }
  // Fraction of all blocks that are stored.
  double density() const;
};

// Blocks of w [rows, cols] (row-major) that hold a non-zero: weights, or a pruning mask.
BlockPattern block_pattern(const float* w, std::int64_t rows, std::int64_t cols);
BlockPattern block_pattern(const std::uint8_t* mask, std::int64_t rows, std::int64_t cols);

// y[n, rows] = x[n, cols] w^T (+ bias when not null), w zero outside the pattern's blocks.
void block_sparse_forward(const BlockPattern& p, const float* w, const float* bias, const float* x,
                          std::int64_t n, float* y);
// The backward pass from dy [n, rows], each output optional (null: not wanted):
// dx [n, cols] = dy w; dw = dy^T x on the pattern's blocks, every other entry of dw set to 0.
void block_sparse_backward(const BlockPattern& p, const float* w, const float* x, const float* dy,
                           std::int64_t n, float* dx, float* dw);

}  // namespace verdant::kernels
