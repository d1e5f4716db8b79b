#include "compressed.hpp"

#include <zlib.h>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"

namespace verdant::data {

namespace fs = std::filesystem;

namespace {
// Refuse to inflate beyond 16 GiB: far above any real data file (a zip bomb otherwise).
constexpr std::uint64_t kMaxPayload = std::uint64_t{1} << 34;

bool is_gzip(std::span<const std::uint8_t> raw) {
  return raw.size() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b;
}

std::vector<std::uint8_t> gunzip(std::span<const std::uint8_t> raw, const std::string& origin) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw Error(origin + ": zlib init failed");
  std::vector<std::uint8_t> out(raw.size() * 4 + 1024);
  zs.next_in = const_cast<Bytef*>(raw.data());
  zs.avail_in = static_cast<uInt>(raw.size());
  std::size_t produced = 0;
  int rc = Z_OK;
  while (true) {
    if (produced == out.size()) {
      if (out.size() > kMaxPayload) {
        inflateEnd(&zs);
        throw Error(origin + ": decompressed data is implausibly large");
      }
      out.resize(out.size() * 2);
    }
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(out.size() - produced);
    rc = inflate(&zs, Z_NO_FLUSH);
    produced = out.size() - zs.avail_out;
    if (rc == Z_STREAM_END) break;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      inflateEnd(&zs);
      throw Error(origin + ": truncated gzip data");
    }
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
      std::string msg = zs.msg ? zs.msg : "error " + std::to_string(rc);
      inflateEnd(&zs);
      throw Error(origin + ": corrupt gzip data (" + msg + ")");
    }
  }
  inflateEnd(&zs);
  out.resize(produced);
  return out;
}

}  // namespace

std::vector<std::uint8_t> gzip_bytes(std::span<const std::uint8_t> data) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    throw Error("zlib deflate init failed");
  std::vector<std::uint8_t> out(deflateBound(&zs, data.size()) + 64);
  zs.next_in = const_cast<Bytef*>(data.data());
  zs.avail_in = static_cast<uInt>(data.size());
  zs.next_out = out.data();
  zs.avail_out = static_cast<uInt>(out.size());
  int rc = deflate(&zs, Z_FINISH);
  out.resize(out.size() - zs.avail_out);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw Error("zlib deflate failed");
  return out;
}

std::vector<std::uint8_t> maybe_gunzip(std::span<const std::uint8_t> bytes,
                                       const std::string& origin) {
  return is_gzip(bytes) ? gunzip(bytes, origin)
                        : std::vector<std::uint8_t>(bytes.begin(), bytes.end());
}

std::vector<std::uint8_t> read_file_maybe_gzip(const fs::path& path) {
  std::vector<std::uint8_t> raw = read_file_bytes(path);
  return is_gzip(raw) ? gunzip(raw, path.string()) : raw;
}

}  // namespace verdant::data
