#include "verdant/data/idx.hpp"

#include <zlib.h>

#include <cstdio>
#include <cstring>
#include <span>
#include <string>

#include "compressed.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"

namespace verdant::data {

namespace fs = std::filesystem;

namespace {

constexpr std::uint8_t kTypeUnsignedByte = 0x08;
// Refuse absurd headers before allocating: 16 GiB is far above any real IDX file.
constexpr std::uint64_t kMaxPayload = std::uint64_t{1} << 34;

}  // namespace

IdxArray read_idx(const fs::path& path) {
  if (!fs::exists(path)) throw Error(path.string() + ": no such file");
  return parse_idx(read_file_bytes(path), path.string());
}

IdxArray parse_idx(std::span<const std::uint8_t> bytes, const std::string& origin) {
  std::vector<std::uint8_t> data = maybe_gunzip(bytes, origin);

  if (data.size() < 4)
    throw Error(origin + ": truncated IDX header (" + std::to_string(data.size()) + " bytes)");
  if (data[0] != 0 || data[1] != 0) {
    char magic[16];
    std::snprintf(magic, sizeof magic, "0x%02X%02X%02X%02X", data[0], data[1], data[2], data[3]);
    throw Error(origin + ": not an IDX file (bad magic " + magic + ")");
  }
  if (data[2] != kTypeUnsignedByte) {
    char type[8];
    std::snprintf(type, sizeof type, "0x%02X", data[2]);
    throw Error(origin + ": unsupported IDX data type " + type + " (only unsigned byte 0x08)");
  }
  int ndim = data[3];
  if (ndim < 1) throw Error(origin + ": IDX header declares 0 dimensions");
  std::size_t header = 4 + 4 * static_cast<std::size_t>(ndim);
  if (data.size() < header) throw Error(origin + ": truncated IDX header");

  IdxArray out;
  std::uint64_t total = 1, nonzero = 1;
  for (int i = 0; i < ndim; ++i) {
    const std::uint8_t* p = data.data() + 4 + 4 * i;
    std::uint32_t d = (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) |
                      (std::uint32_t{p[2]} << 8) | std::uint32_t{p[3]};
    out.dims.push_back(d);
    // A zero dimension makes the payload empty, but the others still size each sample. The
    // bound is checked before each product, which could otherwise wrap past it.
    if (d != 0 && nonzero > kMaxPayload / d)
      throw Error(origin + ": IDX dimensions are implausibly large");
    total *= d;
    if (d) nonzero *= d;
  }
  std::uint64_t have = data.size() - header;
  if (have < total)
    throw Error(origin + ": truncated IDX data (header promises " + std::to_string(total) +
                " bytes, file has " + std::to_string(have) + ")");
  if (have > total)
    throw Error(origin + ": " + std::to_string(have - total) +
                " unexpected bytes after the IDX data");
  out.bytes.assign(data.begin() + static_cast<std::ptrdiff_t>(header), data.end());
  return out;
}

void write_idx(const fs::path& path, const IdxArray& array, bool compress) {
  std::vector<std::uint8_t> buf = {0, 0, kTypeUnsignedByte,
                                   static_cast<std::uint8_t>(array.dims.size())};
  for (auto d : array.dims) {
    auto v = static_cast<std::uint32_t>(d);
    buf.insert(buf.end(), {static_cast<std::uint8_t>(v >> 24), static_cast<std::uint8_t>(v >> 16),
                           static_cast<std::uint8_t>(v >> 8), static_cast<std::uint8_t>(v)});
  }
  buf.insert(buf.end(), array.bytes.begin(), array.bytes.end());
  if (compress) buf = gzip_bytes(buf);
  write_file_atomic(path, buf);
}

}  // namespace verdant::data
