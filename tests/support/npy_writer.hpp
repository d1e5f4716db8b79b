#pragma once
// Writes NumPy .npy files as NumPy does (format 1.0), for tests of the readers.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "verdant/core/io.hpp"

namespace verdant::test_support {

// The bytes of a .npy file as NumPy writes it (format 1.0, header padded to 64 bytes).
inline std::vector<std::uint8_t> npy_bytes(const std::string& descr,
                                           const std::vector<std::int64_t>& shape, const void* data,
                                           std::size_t bytes, bool fortran = false) {
  std::string dims;
  for (auto d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = "{'descr': '" + descr +
                       "', 'fortran_order': " + (fortran ? "True" : "False") + ", 'shape': (" +
                       dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::vector<std::uint8_t> out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0};
  out.push_back(static_cast<std::uint8_t>(header.size() & 0xff));
  out.push_back(static_cast<std::uint8_t>(header.size() >> 8));
  out.insert(out.end(), header.begin(), header.end());
  const auto* p = static_cast<const std::uint8_t*>(data);
  out.insert(out.end(), p, p + bytes);
  return out;
}

template <typename T>
void write_npy(const std::filesystem::path& path, const std::string& descr,
               const std::vector<std::int64_t>& shape, const std::vector<T>& values) {
  verdant::write_file_atomic(path,
                             npy_bytes(descr, shape, values.data(), values.size() * sizeof(T)));
}

}  // namespace verdant::test_support
