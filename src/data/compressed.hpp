#pragma once
// gzip for the data files (IDX, CSV): a file is read whole, inflated when its first bytes say
// it is gzip, and data is compressed the same way for tests and tools.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace verdant::data {

// The file's bytes, decompressed if it is gzip. Errors (unreadable, truncated or corrupt gzip,
// implausibly large) name the file.
std::vector<std::uint8_t> read_file_maybe_gzip(const std::filesystem::path& path);
// The same for bytes already in memory; errors name `origin`.
std::vector<std::uint8_t> maybe_gunzip(std::span<const std::uint8_t> bytes,
                                       const std::string& origin);
std::vector<std::uint8_t> gzip_bytes(std::span<const std::uint8_t> data);

}  // namespace verdant::data
