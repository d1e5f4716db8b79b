#pragma once
// File helpers shared by every module. Writes are atomic: a temporary file beside the
// target is written, flushed and renamed over it, so a crash never leaves half a file.
#include <cstddef>
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

// Removes what write_file_atomic(target, ...) leaves behind when its process dies mid-write
// (kill -9, preemption): files beside `target` named exactly "<target>.tmp.<pid>" whose
// process no longer exists. A file whose pid is alive is kept, even if the pid now belongs to
// another program, since it may be a write in progress. Files that cannot be removed are left
// alone (a run need not stop for them). Returns how many were removed.
std::size_t remove_stale_temporaries(const std::filesystem::path& target);

// Reads a whole file. Throws verdant::Error naming the path if it cannot be read.
std::vector<std::uint8_t> read_file_bytes(const std::filesystem::path& path);
std::string read_file_text(const std::filesystem::path& path);

}  // namespace verdant
