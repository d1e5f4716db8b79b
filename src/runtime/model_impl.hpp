#pragma once
// A loaded .vdm model's plan, shared by the loader (loader.cpp: validation, layer plans,
// arena and requantization constants; run once, compiled for size) and inference
// (model.cpp). Internal to the runtime.
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <vector>

#include "verdant/runtime/kernels.hpp"
#include "verdant/runtime/model.hpp"

namespace verdant::runtime {

inline std::int32_t sat_add(std::int32_t a, std::int32_t b) {
  const std::int64_t s = static_cast<std::int64_t>(a) + b;
  if (s > std::numeric_limits<std::int32_t>::max()) return std::numeric_limits<std::int32_t>::max();
  if (s < std::numeric_limits<std::int32_t>::min()) return std::numeric_limits<std::int32_t>::min();
  return static_cast<std::int32_t>(s);
}

inline bool is_int8(vdm::Encoding e) {
  return e == vdm::Encoding::int8 || e == vdm::Encoding::int8_csr || e == vdm::Encoding::int8_bsr;
}

inline bool is_sparse(vdm::Encoding e) {
  return e == vdm::Encoding::int8_csr || e == vdm::Encoding::int8_bsr;
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};

struct LayerPlan {
  vdm::LayerRecord rec{};
  std::uint32_t first_tensor = 0;
  std::size_t k = 0, kp = 0, rows = 0;   // GEMM view: rows = out_c, k = reduction length
  std::uint32_t conv_h = 1, conv_w = 1;  // before pooling
  std::size_t in_elems = 0, out_elems = 0;
  const float* wf = nullptr;
  const float* bf = nullptr;
  const std::int8_t* w8 = nullptr;
  const float* wscale = nullptr;
  const std::int32_t* bias_i = nullptr;
  const std::uint32_t* row_ptr = nullptr;  // CSR: per row; BSR: per block row
  const std::uint16_t* col = nullptr;
  std::size_t block_rows = 0;    // BSR: ceil(rows / kBlock)
  bool expand_to_dense = false;  // sparse, but denser than the kernel table's break-even
  // Dense int8 rows [rows][kp]: the file's, or sparse expanded (when the table does not pack).
  const std::int8_t* wd = nullptr;
  // The dense rows in the kernel table's own layout (KernelTable::pack_s8), in the arena;
  // bytes 0 when the table has none or the layer runs sparse.
  std::size_t packed_bytes = 0;
  const std::int8_t* wpacked = nullptr;
  // Precomputed in the arena: bias with the input zero-point correction folded in
  // (bias - Z_in * sum_k w), fixed-point multipliers and shifts, or dequantization scales.
  std::int32_t* bias_fold = nullptr;
  std::int32_t* mult = nullptr;
  std::int32_t* shift = nullptr;
  float* deq = nullptr;
  std::int32_t act_lo = 0;
  // A max-pooled conv with u8 outputs whose acc + bias cannot wrap: it pools the
  // accumulators and requantizes the pooled ones (requantization never decreases as its
  // input grows, so max and requantization commute).
  bool pool_before_requant = false;
};

struct Model::Impl {
  std::vector<LayerPlan> layers;
  std::unique_ptr<std::uint8_t[], FreeDeleter> arena;
  std::uint8_t* buf[2] = {nullptr, nullptr};
  std::uint8_t* col = nullptr;          // one im2col row (f32 or u8)
  std::uint8_t* pre = nullptr;          // conv output before pooling
  std::int32_t* acc = nullptr;          // one column of accumulators
  std::uint8_t* requantized = nullptr;  // one column, requantized
  const KernelTable* kernels = nullptr;
  std::uint64_t macs = 0;
};

}  // namespace verdant::runtime
