#pragma once
// Unstructured sparse matrix products for training layers whose weights are mostly masked out:
// the forward and the input gradient multiply only the kept weights (CSR x dense over the
// batch), and the weight gradient is computed only at the kept positions (SDDMM). The dense
// reference is sgemm on the same weights with zeros outside the mask (tests compare them).
#include <cstdint>
#include <vector>

namespace verdant::kernels {

// The kept positions of a [rows, cols] weight: by row (row_ptr/col, CSR) and, for the
// transposed product, by column (col_ptr/col_rows, with by_col naming each entry's CSR index).
struct CsrPattern {
  std::int64_t rows = 0, cols = 0;
  std::vector<std::uint32_t> row_ptr;   // [rows + 1]
  std::vector<std::uint32_t> col;       // column of each kept weight, increasing in a row
  std::vector<std::uint32_t> col_ptr;   // [cols + 1]
  std::vector<std::uint32_t> col_rows;  // row of each entry in column order
  std::vector<std::uint32_t> by_col;    // CSR index of each entry in column order
  std::int64_t nnz() const { return static_cast<std::int64_t>(col.size()); }
  // Fraction of the weights that are kept.
  double density() const;
};

// The non-zero entries of mask [rows, cols] (row-major).
CsrPattern csr_pattern(const std::uint8_t* mask, std::int64_t rows, std::int64_t cols);

// x [n, cols] -> xt [cols, n]: the layout the products below read their dense operand in.
void batch_major(const float* x, std::int64_t n, std::int64_t cols, float* xt);

// y[n, rows] = x w^T (+ bias when not null), reading w only at the pattern; xt = batch_major(x).
void csr_forward(const CsrPattern& p, const float* w, const float* bias, const float* xt,
                 std::int64_t n, float* y);
// The backward pass from dy [n, rows], each output optional (null: not wanted):
// dx [n, cols] = dy w over the kept weights; dw = dy^T x at the kept positions, every other entry
// of dw set to 0. xt = batch_major(x).
void csr_backward(const CsrPattern& p, const float* w, const float* xt, const float* dy,
                  std::int64_t n, float* dx, float* dw);

}  // namespace verdant::kernels
