#pragma once
// IDX files (the MNIST / Fashion-MNIST container): big-endian header, then raw bytes.
// gzip-compressed and plain files are both accepted (detected from the content).
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace verdant::data {

// An unsigned-byte IDX array: dims from the header, payload kept as bytes.
struct IdxArray {
  std::vector<std::int64_t> dims;
  std::vector<std::uint8_t> bytes;
};

// Reads an IDX file of unsigned bytes (type code 0x08). Throws verdant::Error naming the
// file on a missing/unreadable file, bad magic, unsupported type, truncated data or
// trailing garbage.
IdxArray read_idx(const std::filesystem::path& path);
// The same from bytes already in memory (plain or gzip); `origin` names them in errors.
IdxArray parse_idx(std::span<const std::uint8_t> bytes, const std::string& origin);

// Writes an unsigned-byte IDX file (plain, or gzip when `gzip` is true). For tests and tools.
void write_idx(const std::filesystem::path& path, const IdxArray& array, bool gzip);

}  // namespace verdant::data
