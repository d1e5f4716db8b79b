#pragma once
// File helpers shared by every module. Writes are atomic: a temporary file beside the
// target is written, flushed and renamed over it, so a crash never leaves half a file.
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace verdant {

// Writes `bytes` to `path` atomically. Throws verdant::Error naming the path on failure.
void write_file_atomic(const std::filesystem::path& path, std::span<const std::uint8_t> bytes);
void write_file_atomic(const std::filesystem::path& path, std::string_view text);

// Reads a whole file. Throws verdant::Error naming the path if it cannot be read.
std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path);
std::string read_file_text(const std::filesystem::path& path);

}  // namespace verdant
