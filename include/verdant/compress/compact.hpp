#pragma once
// Our compact model encoding (`.vcz`): what a pruned and/or int8 model really costs on disk.
// Per tensor: weights (ndim >= 2) as int8 with one fp32 scale per output channel, stored
// densely or, when sparse, as a bit mask plus the nonzero int8 codes; other tensors as fp32.
// The whole payload is then deflated (zlib), which squeezes the mask and the codes the way
// Deep Compression's Huffman stage does.
//
// Layout: "VCZ1" | u32 tensor count | per tensor: u16 name len, name, u8 kind (0 fp32,
// 1 int8 dense, 2 int8 sparse), u8 ndim, i64 dims[ndim], then kind 0: f32[numel];
// kind 1: f32 scales[dim0], i8[numel]; kind 2: f32 scales[dim0], u32 nonzero count, per
// nonzero its gap from the previous one (flat index; bytes of 255 add 255, the first byte
// below 255 ends the gap), then i8 codes[nonzero]. File = "VCZD" | u64 raw size | zlib stream.
#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "verdant/core/tensor.hpp"

namespace verdant::compress {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct CompactOptions {
  bool int8 = true;  // false: weights stay fp32 (only sparse masks help)
};

std::vector<std::uint8_t> encode_compact(const NamedTensors& tensors, CompactOptions options = {});
// Dequantized tensors back (fp32). Throws verdant::Error naming `origin` on any defect.
NamedTensors decode_compact(const std::vector<std::uint8_t>& bytes, const std::string& origin);

// Bytes of the same tensors as plain dense fp32.
std::int64_t dense_fp32_bytes(const NamedTensors& tensors);

}  // namespace verdant::compress
