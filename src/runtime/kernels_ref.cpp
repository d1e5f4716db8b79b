// Reference kernels: the plain twins every optimized kernel is tested against.
#include <cstdint>

#include "kernel_tables.hpp"

namespace verdant::runtime {
namespace {

void gemv_s8_ref(const std::int8_t* w, std::size_t row_stride, const std::uint8_t* x,
                 std::size_t kp, std::size_t rows, std::int32_t* out) {
  for (std::size_t r = 0; r < rows; ++r) {
    const std::int8_t* wr = w + r * row_stride;
    std::int32_t acc = 0;
    for (std::size_t k = 0; k < kp; ++k) acc += static_cast<std::int32_t>(wr[k]) * x[k];
    out[r] = acc;
  }
}

void gemv_f32_ref(const float* w, std::size_t row_stride, const float* x, std::size_t kp,
                  std::size_t rows, float* out) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* wr = w + r * row_stride;
    float acc = 0.f;
    for (std::size_t k = 0; k < kp; ++k) acc += wr[k] * x[k];
    out[r] = acc;
  }
}

void spmv_s8_ref(const std::uint32_t* row_ptr, const std::uint16_t* col, const std::int8_t* val,
                 std::size_t rows, const std::uint8_t* x, std::int32_t* out) {
  for (std::size_t r = 0; r < rows; ++r) {
    std::int32_t acc = 0;
    for (std::uint32_t j = row_ptr[r]; j < row_ptr[r + 1]; ++j)
      acc += static_cast<std::int32_t>(val[j]) * x[col[j]];
    out[r] = acc;
  }
}

void requant_u8_ref(const std::int32_t* acc, const std::int32_t* bias, const std::int32_t* mult,
                    const std::int32_t* shift, std::size_t n, std::int32_t zp, std::int32_t lo,
                    std::uint8_t* out) {
  for (std::size_t i = 0; i < n; ++i) {
    // Wrapping add, like the SIMD twin (unsigned arithmetic: no overflow UB).
    const auto v = static_cast<std::int32_t>(static_cast<std::uint32_t>(acc[i]) +
                                             static_cast<std::uint32_t>(bias[i]));
    const auto x =
        static_cast<std::int32_t>((std::int64_t{v} * mult[i] + (std::int64_t{1} << 30)) >> 31);
    const std::uint32_t round = (std::uint32_t{1} << shift[i]) >> 1;
    const auto xr =
        static_cast<std::int32_t>(static_cast<std::uint32_t>(x) + round);  // wraps like SIMD
    std::int64_t y = std::int64_t{zp} + (xr >> shift[i]);
    y = y < lo ? lo : (y > 127 ? 127 : y);
    out[i] = static_cast<std::uint8_t>(y);
  }
}

void bsr4x4_s8_ref(const std::uint32_t* row_ptr, const std::uint16_t* col,
                   const std::int8_t* blocks, std::size_t block_rows, const std::uint8_t* x,
                   std::int32_t* out) {
  for (std::size_t b = 0; b < block_rows; ++b)
    for (std::size_t i = 0; i < 4; ++i) {
      std::int32_t acc = 0;
      for (std::uint32_t j = row_ptr[b]; j < row_ptr[b + 1]; ++j)
        for (std::size_t c = 0; c < 4; ++c)
          acc += static_cast<std::int32_t>(blocks[16 * j + 4 * i + c]) * x[4 * col[j] + c];
      out[4 * b + i] = acc;
    }
}

void quantize_u8_ref(const float* x, std::size_t n, float inv_scale, std::int32_t zp,
                     std::uint8_t* out) {
  for (std::size_t i = 0; i < n; ++i) {
    // The library builds with -ffp-contract=off: no fused multiply-add here, as in the twin.
    float v = x[i] * inv_scale + static_cast<float>(zp);
    if (!(v >= 0.f)) v = 0.f;  // also catches NaN
    if (v > 127.f) v = 127.f;
    out[i] = static_cast<std::uint8_t>(v + 0.5f);
  }
}

}  // namespace

constinit const KernelTable kReferenceKernels{
    .isa = "reference",
    .cpu_supports = [] { return true; },
    .csr_max_density = 0.5,
    .bsr_max_density = 1.0,
    .gemv_s8 = gemv_s8_ref,
    .gemv_f32 = gemv_f32_ref,
    .requant_u8 = requant_u8_ref,
    .spmv_s8 = spmv_s8_ref,
    .bsr4x4_s8 = bsr4x4_s8_ref,
    .quantize_u8 = quantize_u8_ref,
    .pack_s8 = nullptr,  // gemv_s8 reads the rows as stored
    .pack_s8_rows = 0,
    .gemv_s8_packed = nullptr,
};

const KernelTable& reference_kernels() {
  return kReferenceKernels;
}

}  // namespace verdant::runtime
