#pragma once
// The AVX-512 VNNI int8 kernels, written once against a small set of vector operations
// `Ops`: vnni_ops.hpp maps them to the instructions (kernels_avx512_vnni.cpp, the only file
// compiled with -mavx512vnni), and the tests map them to plain C++ as well, so the loops,
// tails and masks below are checked against the reference twins on CPUs without VNNI too.
// vpdpbusd multiplies 4 unsigned bytes by 4 signed ones and adds the four products to a
// 32-bit lane without saturation: one instruction for what AVX2 needs three for
// (vpmaddubsw, vpmaddwd, vpaddd). No library templates here: every function this header
// instantiates must be one only this table's file calls.
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace verdant::runtime::vnni {

// A CSR layer denser than this runs faster expanded to dense rows. Not measured (no VNNI
// machine was at hand): the dense kernel does 64 MACs per instruction against AVX2's 32 per
// three, while the CSR gather gains little, so AVX2's 1/16 crossover (bench/edge_bench)
// halves at least. 4x4 blocks gain what the dense kernel gains (4 blocks per vpdpbusd).
inline constexpr double kCsrMaxDensity = 1.0 / 32.0;
inline constexpr double kBsrMaxDensity = 0.35;

// out[r] = sum_k w[r * row_stride + k] * x[k] for k < kp (a multiple of 32): four rows at a
// time, 64 bytes a step, the last 32 bytes of an odd multiple through a masked load.
template <class Ops>
void gemv_s8(const std::int8_t* w, std::size_t row_stride, const std::uint8_t* x, std::size_t kp,
             std::size_t rows, std::int32_t* out) {
  using V = typename Ops::Vec;
  const std::size_t full = kp & ~std::size_t{63}, tail = kp - full;
  std::size_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const std::int8_t* w0 = w + r * row_stride;
    const std::int8_t* w1 = w0 + row_stride;
    const std::int8_t* w2 = w1 + row_stride;
    const std::int8_t* w3 = w2 + row_stride;
    V a0 = Ops::zero(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t k = 0; k < full; k += 64) {
      const V xv = Ops::load(x + k);
      a0 = Ops::dpbusd(a0, xv, Ops::load(w0 + k));
      a1 = Ops::dpbusd(a1, xv, Ops::load(w1 + k));
      a2 = Ops::dpbusd(a2, xv, Ops::load(w2 + k));
      a3 = Ops::dpbusd(a3, xv, Ops::load(w3 + k));
    }
    if (tail != 0) {
      const V xv = Ops::load_bytes(x + full, tail);
      a0 = Ops::dpbusd(a0, xv, Ops::load_bytes(w0 + full, tail));
      a1 = Ops::dpbusd(a1, xv, Ops::load_bytes(w1 + full, tail));
      a2 = Ops::dpbusd(a2, xv, Ops::load_bytes(w2 + full, tail));
      a3 = Ops::dpbusd(a3, xv, Ops::load_bytes(w3 + full, tail));
    }
    out[r] = Ops::sum(a0);
    out[r + 1] = Ops::sum(a1);
    out[r + 2] = Ops::sum(a2);
    out[r + 3] = Ops::sum(a3);
  }
  for (; r < rows; ++r) {
    const std::int8_t* wr = w + r * row_stride;
    V a = Ops::zero();
    for (std::size_t k = 0; k < full; k += 64)
      a = Ops::dpbusd(a, Ops::load(x + k), Ops::load(wr + k));
    if (tail != 0)
      a = Ops::dpbusd(a, Ops::load_bytes(x + full, tail), Ops::load_bytes(wr + full, tail));
    out[r] = Ops::sum(a);
  }
}

// CSR rows, 16 stored weights a step: the inputs gathered one per 32-bit lane (zero-extended
// bytes), the weights sign-extended to 32 bits. vpdpbusd then adds x * w + 0 * (sign bytes)
// per lane, exactly. The gather reads 4 bytes at x + col[j], so x must stay readable 3 bytes
// past its last indexed element (the runtime's buffers have 64 bytes of slack).
template <class Ops>
void spmv_s8(const std::uint32_t* row_ptr, const std::uint16_t* col, const std::int8_t* val,
             std::size_t rows, const std::uint8_t* x, std::int32_t* out) {
  using V = typename Ops::Vec;
  for (std::size_t r = 0; r < rows; ++r) {
    std::uint32_t j = row_ptr[r];
    const std::uint32_t end = row_ptr[r + 1];
    V a = Ops::zero();
    for (; j + 16 <= end; j += 16)
      a = Ops::dpbusd(a, Ops::gather_bytes(x, col + j), Ops::widen_s8(val + j));
    std::int32_t acc = Ops::sum(a);
    for (; j < end; ++j) acc += static_cast<std::int32_t>(val[j]) * x[col[j]];
    out[r] = acc;
  }
}

// 4x4 blocks, four per step: 128-bit lane L holds block j+L's 16 weights (4 rows of 4) and
// the 4 inputs of its columns repeated, so vpdpbusd leaves row i's partial sum in dword i of
// lane L. The last 1-3 blocks of a row take a masked load with their inputs zeroed past them.
template <class Ops>
void bsr4x4_s8(const std::uint32_t* row_ptr, const std::uint16_t* col, const std::int8_t* blocks,
               std::size_t block_rows, const std::uint8_t* x, std::int32_t* out) {
  using V = typename Ops::Vec;
  for (std::size_t br = 0; br < block_rows; ++br) {
    std::uint32_t j = row_ptr[br];
    const std::uint32_t end = row_ptr[br + 1];
    V a = Ops::zero();
    std::int32_t quads[4];
    for (; j < end; j += 4) {
      const std::uint32_t n = end - j < 4 ? end - j : 4;
      for (std::uint32_t l = 0; l < 4; ++l) {
        quads[l] = 0;
        if (l < n) std::memcpy(&quads[l], x + 4 * std::size_t{col[j + l]}, 4);
      }
      const V wv = n == 4 ? Ops::load(blocks + 16 * std::size_t{j})
                          : Ops::load_bytes(blocks + 16 * std::size_t{j}, 16 * n);
      a = Ops::dpbusd(a, Ops::repeat_quads(quads), wv);
    }
    Ops::sum_lanes(a, out + 4 * br);
  }
}

}  // namespace verdant::runtime::vnni
