#include "emulated_vnni_table.hpp"

#include <cstring>

#include "x86/avx512_vnni/int8_kernels.hpp"

namespace verdant::runtime::testing {
namespace {

// One 512-bit register as 64 bytes; dword i is bytes 4i .. 4i+3, little-endian as on x86.
struct EmulatedOps {
  struct Vec {
    std::uint8_t b[64];
  };
  static std::int32_t dword(const Vec& v, int i) {
    std::int32_t d;
    std::memcpy(&d, v.b + 4 * i, 4);
    return d;
  }
  static void set_dword(Vec& v, int i, std::int32_t d) { std::memcpy(v.b + 4 * i, &d, 4); }
  // Two's-complement wrap-around, as the instructions add (no undefined overflow here).
  static std::int32_t wrap_add(std::int32_t a, std::int32_t b) {
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(a) + static_cast<std::uint32_t>(b));
  }

  static Vec zero() { return Vec{}; }
  static Vec load(const void* p) {
    Vec v;
    std::memcpy(v.b, p, 64);
    return v;
  }
  static Vec load_bytes(const void* p, std::size_t n) {  // vmovdqu8 with a zeroing mask
    Vec v{};
    std::memcpy(v.b, p, n);
    return v;
  }
  static Vec dpbusd(Vec acc, Vec u8, Vec s8) {  // vpdpbusd: no saturation
    for (int i = 0; i < 16; ++i) {
      std::int32_t s = 0;
      for (int j = 0; j < 4; ++j)
        s += std::int32_t{u8.b[4 * i + j]} * static_cast<std::int8_t>(s8.b[4 * i + j]);
      set_dword(acc, i, wrap_add(dword(acc, i), s));
    }
    return acc;
  }
  static Vec add(Vec a, Vec b) {
    for (int i = 0; i < 16; ++i) set_dword(a, i, wrap_add(dword(a, i), dword(b, i)));
    return a;
  }
  static Vec broadcast_quad(const std::uint8_t* p) {
    Vec v;
    for (int i = 0; i < 16; ++i) std::memcpy(v.b + 4 * i, p, 4);
    return v;
  }
  static void store_dwords(std::int32_t* out, Vec v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) out[i] = dword(v, static_cast<int>(i));
  }
  static std::int32_t sum(Vec v) {
    std::int32_t s = 0;
    for (int i = 0; i < 16; ++i) s = wrap_add(s, dword(v, i));
    return s;
  }
  static Vec gather_bytes(const std::uint8_t* x, const std::uint16_t* col) {
    Vec v{};
    for (int i = 0; i < 16; ++i) {  // vpgatherdd reads 4 bytes; the mask keeps the first
      std::uint8_t word[4];
      std::memcpy(word, x + col[i], 4);
      set_dword(v, i, word[0]);
    }
    return v;
  }
  static Vec widen_s8(const std::int8_t* w) {
    Vec v;
    for (int i = 0; i < 16; ++i) set_dword(v, i, w[i]);
    return v;
  }
  static Vec repeat_quads(const std::uint8_t* x, const std::uint16_t* col, std::uint32_t n) {
    Vec v{};
    for (std::uint32_t l = 0; l < n; ++l)
      for (int i = 0; i < 4; ++i) std::memcpy(v.b + 16 * l + 4 * i, x + 4 * std::size_t{col[l]}, 4);
    return v;
  }
  static void sum_lanes(Vec v, std::int32_t* out) {
    for (int i = 0; i < 4; ++i) {
      std::int32_t s = 0;
      for (int lane = 0; lane < 4; ++lane) s = wrap_add(s, dword(v, 4 * lane + i));
      out[i] = s;
    }
  }
};

}  // namespace

const KernelTable& emulated_vnni_kernels() {
  // Function-local: the twin tests list it while other files' statics are initialized.
  static const KernelTable table{
      .isa = "avx512_vnni_emulated",
      .cpu_supports = [] { return true; },
      .csr_max_density = vnni::kCsrMaxDensity,
      .bsr_max_density = vnni::kBsrMaxDensity,
      .gemv_s8 = vnni::gemv_s8<EmulatedOps>,
      .gemv_f32 = reference_kernels().gemv_f32,
      .requant_u8 = reference_kernels().requant_u8,
      .spmv_s8 = vnni::spmv_s8<EmulatedOps>,
      .bsr4x4_s8 = vnni::bsr4x4_s8<EmulatedOps>,
      .quantize_u8 = reference_kernels().quantize_u8,
      .pack_s8 = vnni::pack_s8<EmulatedOps>,
      .pack_s8_rows = vnni::kPackRows,
      .gemv_s8_packed = vnni::gemv_s8_packed<EmulatedOps>,
  };
  return table;
}

}  // namespace verdant::runtime::testing
