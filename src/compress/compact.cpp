#include "verdant/compress/compact.hpp"

#include <zlib.h>

#include <cstring>

#include "verdant/compress/quantize.hpp"
#include "verdant/core/error.hpp"

namespace verdant::compress {

namespace {
enum : std::uint8_t { kFp32 = 0, kInt8Dense = 1, kInt8Sparse = 2 };

struct Writer {
  std::vector<std::uint8_t> out;
  template <typename T>
  void put(const T& v) {
    const auto* p = reinterpret_cast<const std::uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
  }
  void bytes(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::uint8_t*>(p);
    out.insert(out.end(), b, b + n);
  }
};

struct Reader {
  const std::vector<std::uint8_t>& in;
  std::size_t pos = 0;
  const std::string& origin;
  void need(std::size_t n) const {
    if (n > in.size() - pos) throw Error(origin + ": truncated compact model");
  }
  template <typename T>
  T get() {
    need(sizeof(T));
    T v;
    std::memcpy(&v, in.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  void bytes(void* p, std::size_t n) {
    need(n);
    std::memcpy(p, in.data() + pos, n);
    pos += n;
  }
};
}  // namespace

std::int64_t dense_fp32_bytes(const NamedTensors& tensors) {
  std::int64_t n = 0;
  for (const auto& [name, t] : tensors) n += t.numel() * 4;
  return n;
}

std::vector<std::uint8_t> encode_compact(const NamedTensors& tensors, CompactOptions options) {
  Writer w;
  w.bytes("VCZ1", 4);
  w.put(static_cast<std::uint32_t>(tensors.size()));
  for (const auto& [name, t] : tensors) {
    w.put(static_cast<std::uint16_t>(name.size()));
    w.bytes(name.data(), name.size());
    const bool weight = t.ndim() >= 2 && options.int8;
    std::int64_t nonzero = 0;
    for (std::int64_t i = 0; i < t.numel(); ++i) nonzero += t.at(i) != 0.0f;
    // A sparse entry costs a gap byte and a code byte: worth it below half density.
    const bool sparse = weight && nonzero * 2 < t.numel();
    w.put(static_cast<std::uint8_t>(!weight ? kFp32 : sparse ? kInt8Sparse : kInt8Dense));
    w.put(static_cast<std::uint8_t>(t.ndim()));
    for (auto d : t.shape()) w.put(static_cast<std::int64_t>(d));
    if (!weight) {
      w.bytes(t.data<float>(), t.nbytes());
      continue;
    }
    const auto params = per_channel_params(t);
    for (const auto& p : params) w.put(p.scale);
    const Tensor q = quantize_per_channel(t, params);
    const auto* codes = q.data<std::int8_t>();
    if (!sparse) {
      w.bytes(codes, static_cast<std::size_t>(t.numel()));
      continue;
    }
    // Positions as gaps between nonzeros, one byte each (255 = "skip 255 more"): deflate
    // packs these close to the mask's entropy, better than it packs a bitmap.
    std::vector<std::uint8_t> gaps;
    std::vector<std::int8_t> values;
    std::int64_t last = -1;
    for (std::int64_t i = 0; i < t.numel(); ++i) {
      if (t.at(i) == 0.0f) continue;
      std::int64_t gap = i - last - 1;
      for (; gap >= 255; gap -= 255) gaps.push_back(255);
      gaps.push_back(static_cast<std::uint8_t>(gap));
      values.push_back(codes[i]);
      last = i;
    }
    w.put(static_cast<std::uint32_t>(values.size()));
    w.bytes(gaps.data(), gaps.size());
    w.bytes(values.data(), values.size());
  }
  uLongf packed_size = compressBound(static_cast<uLong>(w.out.size()));
  std::vector<std::uint8_t> file(12 + packed_size);
  std::memcpy(file.data(), "VCZD", 4);
  const std::uint64_t raw = w.out.size();
  std::memcpy(file.data() + 4, &raw, 8);
  if (compress2(file.data() + 12, &packed_size, w.out.data(), static_cast<uLong>(raw), 9) != Z_OK)
    throw Error("compact encoding: zlib failed");
  file.resize(12 + packed_size);
  return file;
}

NamedTensors decode_compact(const std::vector<std::uint8_t>& bytes, const std::string& origin) {
  if (bytes.size() < 12 || std::memcmp(bytes.data(), "VCZD", 4) != 0)
    throw Error(origin + ": not a Verdant compact model (bad magic)");
  std::uint64_t raw_size;
  std::memcpy(&raw_size, bytes.data() + 4, 8);
  if (raw_size > (std::uint64_t{1} << 32)) throw Error(origin + ": corrupt size field");
  std::vector<std::uint8_t> raw(raw_size);
  uLongf got = static_cast<uLongf>(raw_size);
  if (uncompress(raw.data(), &got, bytes.data() + 12, static_cast<uLong>(bytes.size() - 12)) !=
          Z_OK ||
      got != raw_size)
    throw Error(origin + ": corrupt compressed data");
  Reader r{raw, 0, origin};
  char magic[4];
  r.bytes(magic, 4);
  if (std::memcmp(magic, "VCZ1", 4) != 0) throw Error(origin + ": unknown compact version");
  const auto count = r.get<std::uint32_t>();
  NamedTensors out;
  for (std::uint32_t k = 0; k < count; ++k) {
    std::string name(r.get<std::uint16_t>(), '\0');
    r.bytes(name.data(), name.size());
    const auto kind = r.get<std::uint8_t>();
    const auto ndim = r.get<std::uint8_t>();
    if (kind > kInt8Sparse || ndim == 0 || ndim > 8)
      throw Error(origin + ": corrupt tensor record");
    Shape shape;
    for (int d = 0; d < ndim; ++d) {
      const auto v = r.get<std::int64_t>();
      if (v <= 0 || v > (1 << 28)) throw Error(origin + ": corrupt tensor shape");
      shape.push_back(v);
    }
    if (shape_numel(shape) > (std::int64_t{1} << 30))
      throw Error(origin + ": corrupt tensor shape");
    Tensor t(shape, DType::f32);
    float* dst = t.data<float>();
    const std::int64_t n = t.numel();
    if (kind == kFp32) {
      r.bytes(dst, t.nbytes());
    } else {
      const std::int64_t rows = shape[0], cols = n / rows;
      std::vector<float> scales(static_cast<std::size_t>(rows));
      r.bytes(scales.data(), scales.size() * 4);
      std::vector<std::int8_t> codes(static_cast<std::size_t>(n), 0);
      if (kind == kInt8Dense) {
        r.bytes(codes.data(), codes.size());
      } else {
        const auto nnz = r.get<std::uint32_t>();
        if (nnz > static_cast<std::uint64_t>(n)) throw Error(origin + ": corrupt nonzero count");
        std::vector<std::int64_t> pos(nnz);
        std::int64_t at = -1;
        for (std::uint32_t k = 0; k < nnz; ++k) {
          std::int64_t gap = 0;
          std::uint8_t b;
          while ((b = r.get<std::uint8_t>()) == 255) gap += 255;
          at += gap + b + 1;
          if (at >= n) throw Error(origin + ": corrupt sparse positions");
          pos[k] = at;
        }
        for (std::uint32_t k = 0; k < nnz; ++k) codes[pos[k]] = r.get<std::int8_t>();
      }
      for (std::int64_t i = 0; i < n; ++i) dst[i] = scales[i / cols] * float(codes[i]);
    }
    out.emplace_back(std::move(name), std::move(t));
  }
  if (r.pos != raw.size()) throw Error(origin + ": trailing bytes after the last tensor");
  return out;
}

}  // namespace verdant::compress
