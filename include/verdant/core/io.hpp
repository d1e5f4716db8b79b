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

// Checks beforehand what write_file_atomic(path, ...) will need, so that a command can refuse
// a bad output before its work rather than lose the work: `path` is not a folder, and its
// folder exists and lets us create files. Throws verdant::Error "<path>: <what is wrong>".
void check_writable_file(const std::filesystem::path& path);
// Creates `folder` (and its parents) if needed and checks that files can be created in it.
// Throws verdant::Error "<folder>: <what is wrong>" (a file is in the way, no permission, ...).
void create_writable_folder(const std::filesystem::path& folder);

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
