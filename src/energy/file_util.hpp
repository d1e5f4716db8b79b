#pragma once
// Internal: small-file reads for /proc and /sys, where the size reported by stat() is 0
// and failures (permission, a directory in place of a file) must become a reason string.
#include <filesystem>
#include <optional>
#include <string>

namespace verdant::energy::detail {

// Reads the whole file; on failure returns nullopt and sets *why to "<path>: <strerror>".
std::optional<std::string> read_small_file(const std::filesystem::path& path,
                                           std::string* why = nullptr);

// Same, but throws verdant::Error with that one-line reason.
std::string read_small_file_or_throw(const std::filesystem::path& path);

// Trims ASCII whitespace from both ends.
std::string trim(std::string s);

}  // namespace verdant::energy::detail
