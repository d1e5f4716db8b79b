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

namespace verdant::runtime::vnni {

// A sparse layer denser than this runs faster expanded to dense rows, measured by
// `edge_bench --crossover` (AMD EPYC Zen 5, the mlp at batch 1): CSR took 1.12x the dense
// time at density 0.02 and 0.60x at 0.01 (its 16-lane gathers cost more than the 64 MACs a
// dense vpdpbusd does); 4x4 blocks 1.03x at 0.5 and 0.66x at 0.3.
inline constexpr double kCsrMaxDensity = 1.0 / 64.0;
inline constexpr double kBsrMaxDensity = 0.45;

// out[r] = sum_k w[r * row_stride + k] * x[k] for k < kp (a multiple of 32): four rows at a
// time, 64 bytes a step, the last 32 bytes of an odd multiple through a masked load. Models
// run gemv_s8_packed instead (the loader packs every dense layer for this table); this one
// serves callers with rows as stored.
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

// The layout gemv_s8_packed reads, rows in lanes (oneDNN's habit for int8 products): blocks
// of 16 rows, 64 bytes per block and 4 columns, row i's 4 weights at bytes 4i .. 4i+3. One
// vpdpbusd then adds 4 products to each of 16 rows' sums, the 4 inputs broadcast to every
// lane, and no horizontal sum is left to do. The blocks go in groups of kGroup (the last
// group may be smaller), a group's blocks interleaved per 4 columns, so that the kernel reads
// each group as one sequential stream. Rows past `rows` are zero.
inline constexpr std::size_t kPackRows = 16;
inline constexpr std::size_t kGroup = 4;

// Ops only keeps each table's copy of this plain loop its own (see the top of the file).
template <class Ops>
void pack_s8(const std::int8_t* w, std::size_t kp, std::size_t rows, std::int8_t* packed) {
  const std::size_t quads = kp / 4, blocks = (rows + kPackRows - 1) / kPackRows;
  for (std::size_t b = 0; b < blocks; ++b)
    for (std::size_t q = 0; q < quads; ++q) {
      const std::size_t first = b - b % kGroup;
      const std::size_t in_group = blocks - first < kGroup ? blocks - first : kGroup;
      std::int8_t* dst = packed + (first * quads + q * in_group + b % kGroup) * 64;
      for (std::size_t i = 0; i < kPackRows; ++i) {
        const std::size_t r = b * kPackRows + i;
        for (std::size_t j = 0; j < 4; ++j)
          dst[4 * i + j] = r < rows ? w[r * kp + 4 * q + j] : std::int8_t{0};
      }
    }
}

// One group of kBlocks blocks of 16 rows, sharing each broadcast; each block's quads alternate
// between kChains / kBlocks accumulators, so that 8 chains hide vpdpbusd's latency.
template <class Ops, std::size_t kBlocks>
void gemv_packed_blocks(const std::int8_t* w, std::size_t quads, const std::uint8_t* x,
                        std::size_t rows, std::int32_t* out) {
  using V = typename Ops::Vec;
  constexpr std::size_t kChains = kBlocks == 1 ? 8 : kBlocks == 2 ? 4 : 2;
  V a[kBlocks][kChains];
  for (std::size_t b = 0; b < kBlocks; ++b)
    for (std::size_t c = 0; c < kChains; ++c) a[b][c] = Ops::zero();
  for (std::size_t q = 0; q < quads; q += kChains)
    for (std::size_t c = 0; c < kChains; ++c) {
      const V xq = Ops::broadcast_quad(x + 4 * (q + c));
      for (std::size_t b = 0; b < kBlocks; ++b)
        a[b][c] = Ops::dpbusd(a[b][c], xq, Ops::load(w + ((q + c) * kBlocks + b) * 64));
    }
  for (std::size_t b = 0; b < kBlocks; ++b) {
    V s = a[b][0];
    for (std::size_t c = 1; c < kChains; ++c) s = Ops::add(s, a[b][c]);
    const std::size_t left = rows - b * kPackRows;
    Ops::store_dwords(out + b * kPackRows, s, left < kPackRows ? left : kPackRows);
  }
}

// out[r] = sum_k w[r][k] * x[k] for k < kp (a multiple of 32), w packed by pack_s8.
template <class Ops>
void gemv_s8_packed(const std::int8_t* packed, const std::uint8_t* x, std::size_t kp,
                    std::size_t rows, std::int32_t* out) {
  const std::size_t quads = kp / 4, blocks = (rows + kPackRows - 1) / kPackRows;
  const auto at = [&](std::size_t b) { return packed + b * quads * 64; };
  std::size_t b = 0;
  for (; b + kGroup <= blocks; b += kGroup)
    gemv_packed_blocks<Ops, kGroup>(at(b), quads, x, rows - b * kPackRows, out + b * kPackRows);
  const std::size_t rest = rows - b * kPackRows;
  switch (blocks - b) {
    case 3:
      gemv_packed_blocks<Ops, 3>(at(b), quads, x, rest, out + b * kPackRows);
      break;
    case 2:
      gemv_packed_blocks<Ops, 2>(at(b), quads, x, rest, out + b * kPackRows);
      break;
    case 1:
      gemv_packed_blocks<Ops, 1>(at(b), quads, x, rest, out + b * kPackRows);
      break;
    default:
      break;
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
// the 4 inputs of its columns repeated (broadcast straight from x, no store to reload), so vpdpbusd
// leaves row i's partial sum in dword i of lane L. The last 1-3 blocks of a row take a masked load
// with their inputs zeroed past them.
template <class Ops>
void bsr4x4_s8(const std::uint32_t* row_ptr, const std::uint16_t* col, const std::int8_t* blocks,
               std::size_t block_rows, const std::uint8_t* x, std::int32_t* out) {
  using V = typename Ops::Vec;
  for (std::size_t br = 0; br < block_rows; ++br) {
    std::uint32_t j = row_ptr[br];
    const std::uint32_t end = row_ptr[br + 1];
    V a = Ops::zero();
    for (; j < end; j += 4) {
      const std::uint32_t n = end - j < 4 ? end - j : 4;
      const V wv = n == 4 ? Ops::load(blocks + 16 * std::size_t{j})
                          : Ops::load_bytes(blocks + 16 * std::size_t{j}, 16 * n);
      a = Ops::dpbusd(a, Ops::repeat_quads(x, col + j, n), wv);
    }
    Ops::sum_lanes(a, out + 4 * br);
  }
}

}  // namespace verdant::runtime::vnni
