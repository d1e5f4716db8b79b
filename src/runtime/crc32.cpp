// CRC-32 (IEEE 802.3), table-driven, written by hand so the runtime needs no zlib.
#include <array>

#include "verdant/runtime/vdm_format.hpp"

namespace verdant::vdm {
namespace {

constexpr std::array<std::uint32_t, 256> make_table() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kTable = make_table();

}  // namespace

std::uint32_t crc32_update(std::uint32_t crc, const void* data, std::size_t n) {
  const auto* p = static_cast<const std::uint8_t*>(data);
  crc = ~crc;
  for (std::size_t i = 0; i < n; ++i) crc = kTable[(crc ^ p[i]) & 0xFFu] ^ (crc >> 8);
  return ~crc;
}

std::uint32_t file_crc32(const void* file, std::size_t size) {
  const auto* p = static_cast<const std::uint8_t*>(file);
  constexpr std::size_t at = offsetof(FileHeader, crc32);
  if (size < at + 4) return crc32_update(0, p, size);
  static constexpr std::uint8_t zeros[4] = {0, 0, 0, 0};
  std::uint32_t crc = crc32_update(0, p, at);
  crc = crc32_update(crc, zeros, 4);
  return crc32_update(crc, p + at + 4, size - at - 4);
}

}  // namespace verdant::vdm
