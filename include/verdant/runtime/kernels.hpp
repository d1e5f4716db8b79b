#pragma once
// The runtime's compute kernels, as tables of function pointers (ggml's type_traits habit).
// The reference table is plain C++; each ISA-specific table lives in its own folder
// (src/runtime/x86/avx2/) with the CPU-feature check it needs. The library lists the tables
// it was built with, best first and the reference last (oneDNN's implementation lists), and
// picks the first one this CPU supports unless VERDANT_RUNTIME_ISA names another.
#include <cstddef>
#include <cstdint>
#include <span>         // the table lists
#include <string_view>  // find_kernels

namespace verdant::runtime {

struct KernelTable {
  const char* isa;  // the table's name, e.g. "avx2"; what VERDANT_RUNTIME_ISA selects
  // Whether this CPU has the instructions the table's kernels use.
  bool (*cpu_supports)();
  // A CSR layer denser than this runs faster through gemv_s8 on this ISA: the loader then
  // expands it to dense rows in its arena (one MAC per gathered element against 32 per
  // vpmaddubsw makes unstructured CSR lose above ~1/64 density on AVX2; measured by
  // `edge_bench --crossover`).
  double csr_max_density;
  // A block-sparse layer (4x4 blocks) denser than this runs faster through gemv_s8.
  double bsr_max_density;
  // out[r] = sum_k w[r*row_stride + k] * x[k], k < kp. kp is a multiple of 32; x holds
  // values in [0, 127] (7-bit activations, see vdm_format.hpp) and w in [-128, 127].
  void (*gemv_s8)(const std::int8_t* w, std::size_t row_stride, const std::uint8_t* x,
                  std::size_t kp, std::size_t rows, std::int32_t* out);
  // Same in fp32; kp is a multiple of 8.
  void (*gemv_f32)(const float* w, std::size_t row_stride, const float* x, std::size_t kp,
                   std::size_t rows, float* out);
  // Requantization of n accumulators to 7-bit activations, integers only (Jacob et al. 2018):
  // v = acc + bias (wrapping), x = (v * mult + 2^30) >> 31, y = (x + 2^(shift-1)) >> shift
  // (arithmetic shifts; no rounding term when shift = 0), out = clamp(zp + y, lo, 127).
  void (*requant_u8)(const std::int32_t* acc, const std::int32_t* bias, const std::int32_t* mult,
                     const std::int32_t* shift, std::size_t n, std::int32_t zp, std::int32_t lo,
                     std::uint8_t* out);
  // CSR: out[r] = sum_{j in [row_ptr[r], row_ptr[r+1])} val[j] * x[col[j]].
  void (*spmv_s8)(const std::uint32_t* row_ptr, const std::uint16_t* col, const std::int8_t* val,
                  std::size_t rows, const std::uint8_t* x, std::int32_t* out);
  // Block-sparse rows of 4x4 blocks: block row b holds blocks j in [row_ptr[b], row_ptr[b+1]),
  // each covering rows 4b..4b+3 and columns 4*col[j]..4*col[j]+3, stored row-major in
  // blocks[16*j .. 16*j+15]. Writes out[0 .. 4*block_rows). x values in [0, 127].
  void (*bsr4x4_s8)(const std::uint32_t* row_ptr, const std::uint16_t* col,
                    const std::int8_t* blocks, std::size_t block_rows, const std::uint8_t* x,
                    std::int32_t* out);
  // Input quantization to 7-bit activations: v = x * inv_scale + zp, clamped to [0, 127]
  // (NaN -> 0), then rounded half up.
  void (*quantize_u8)(const float* x, std::size_t n, float inv_scale, std::int32_t zp,
                      std::uint8_t* out);
  // Optional (null in a table whose gemv_s8 is its fastest dense product): a layout of its
  // own for dense int8 weights, which the loader prepares once. pack_s8 writes rows [rows][kp]
  // into ceil(rows / pack_s8_rows) * pack_s8_rows * kp bytes; gemv_s8_packed then computes
  // what gemv_s8 does on the rows, writing out[0, rows).
  void (*pack_s8)(const std::int8_t* w, std::size_t kp, std::size_t rows, std::int8_t* packed);
  std::size_t pack_s8_rows;
  void (*gemv_s8_packed)(const std::int8_t* packed, const std::uint8_t* x, std::size_t kp,
                         std::size_t rows, std::int32_t* out);
};

// The plain twins every other table is tested against; runs on any CPU.
const KernelTable& reference_kernels();
// Every table this library was built with, best first, the reference last.
std::span<const KernelTable* const> compiled_kernel_tables();
// The compiled tables this CPU supports, in the same order: the first is the best.
std::span<const KernelTable* const> supported_kernel_tables();
// The supported table called `isa`, or nullptr when it is unknown or this CPU lacks it.
const KernelTable* find_kernels(std::string_view isa);
// The table models load with by default, chosen once: the table VERDANT_RUNTIME_ISA names,
// else the best supported one. A name that find_kernels() does not know falls back to the
// best table, with a one-line warning on stderr.
const KernelTable& active_kernels();

}  // namespace verdant::runtime
