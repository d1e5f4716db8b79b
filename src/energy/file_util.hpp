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

// A file read again and again through one descriptor, from offset 0 (pread), for the /proc
// counters sampled at every phase boundary: on some kernels opening a /proc file costs as much
// as reading it (~15 us each on this project's VM). The text is regenerated at every read; a
// file replaced by another (rename) is not seen, one rewritten in place (as /proc's are) is.
class RereadFile {
 public:
  explicit RereadFile(std::filesystem::path path) : path_(std::move(path)) {}
  ~RereadFile();
  RereadFile(const RereadFile&) = delete;
  RereadFile& operator=(const RereadFile&) = delete;
  // The whole file, like read_small_file(); after a failure the next read opens it again.
  std::optional<std::string> read(std::string* why = nullptr);
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
  int fd_ = -1;
};

// Trims ASCII whitespace from both ends.
std::string trim(std::string s);

}  // namespace verdant::energy::detail
