#pragma once
// `.vckpt` checkpoints: a versioned binary file holding named tensors (model parameters and
// buffers, optimizer state, RNG state) and string metadata (position in the run, config).
//
// Layout (little-endian), version 1:
//   magic "VCKPT\r\n\x1a" (8) | u32 version | u32 flags (0) | u64 file size
//   u32 meta count  | per entry: u32 key len, key, u32 value len, value
//   u32 tensor count| per entry: u32 name len, name, u8 dtype, u8 ndim, i64 dims[ndim],
//                     u64 offset (from the start of the data block), u64 byte count
//   data block (each tensor's bytes, 64-byte aligned within the block)
//   u32 crc32 (zlib) of every byte before it
// The reader checks size, magic, version, checksum and every bound before trusting a field.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "verdant/core/tensor.hpp"

namespace verdant::train {

inline constexpr std::uint32_t kCheckpointVersion = 1;

struct Checkpoint {
  std::vector<std::pair<std::string, std::string>> meta;
  std::vector<std::pair<std::string, Tensor>> tensors;

  // Lookups; the throwing forms name the missing key.
  const std::string* find_meta(const std::string& key) const;
  const std::string& meta_at(const std::string& key) const;
  const Tensor* find_tensor(const std::string& name) const;
  void set_meta(const std::string& key, std::string value);
};

// Serialises to bytes / writes atomically (temporary file + rename).
std::vector<std::uint8_t> encode_checkpoint(const Checkpoint& ckpt);
void save_checkpoint(const std::filesystem::path& path, const Checkpoint& ckpt);

// Parses; any defect -> verdant::Error "<origin>: <what is wrong>" (one line).
Checkpoint decode_checkpoint(const std::vector<std::uint8_t>& bytes, const std::string& origin);
Checkpoint load_checkpoint(const std::filesystem::path& path);

// True when `bytes` begin with the checkpoint magic (how a file is told to be one).
bool has_checkpoint_magic(std::span<const std::uint8_t> bytes);

}  // namespace verdant::train
