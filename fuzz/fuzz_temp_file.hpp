#pragma once
// Loaders that read a path (memory maps, libzip, gzip streams) get each input through one
// file, rewritten per input, in the fuzzer's own temporary directory.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

namespace verdant::fuzz {

inline std::filesystem::path write_input(const std::uint8_t* data, std::size_t size,
                                         const std::string& extension) {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("verdant-fuzz-" + std::to_string(getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  const auto path = dir / ("input" + extension);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) std::abort();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

}  // namespace verdant::fuzz
