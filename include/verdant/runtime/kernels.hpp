#pragma once
// The runtime's compute kernels, as a table chosen once at start-up from the CPU's features
// (ggml's type_traits habit). The reference table is plain C++; ISA-specific tables live in
// their own folders (src/runtime/x86/avx2/) and are only referenced through a pointer.
#include <cstddef>
#include <cstdint>

namespace verdant::runtime {

struct KernelTable {
  const char* isa;
  // A CSR layer denser than this runs faster through gemv_s8 on this ISA: the loader then
  // expands it to dense rows in its arena (one MAC per stored element against 32 per
  // vpmaddubsw makes unstructured CSR lose above ~1/16 density on AVX2).
  double csr_max_density;
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
  // A block-sparse layer (4x4 blocks) denser than this runs faster through gemv_s8.
  double bsr_max_density;
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
};

const KernelTable& reference_kernels();
// nullptr when the library was built without AVX2 kernels or the CPU lacks AVX2 + FMA.
const KernelTable* avx2_kernels();
// The table in use: the best one the CPU supports (VERDANT_RUNTIME_ISA=reference forces the
// reference kernels, for comparisons).
const KernelTable& active_kernels();

}  // namespace verdant::runtime
