#include "verdant/train/checkpoint.hpp"

#include <zlib.h>

#include <cstring>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"

namespace verdant::train {

namespace {

constexpr char kMagic[8] = {'V', 'C', 'K', 'P', 'T', '\r', '\n', '\x1a'};
constexpr std::size_t kDataAlign = 64;
constexpr int kMaxDims = 8;

class Writer {
 public:
  std::vector<std::uint8_t> buf;
  template <typename T>
  void put(T v) {
    std::uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));  // little-endian hosts only (x86-64, arm64)
    buf.insert(buf.end(), b, b + sizeof(T));
  }
  void put_string(const std::string& s) {
    put<std::uint32_t>(static_cast<std::uint32_t>(s.size()));
    buf.insert(buf.end(), s.begin(), s.end());
  }
};

class Reader {
 public:
  Reader(const std::vector<std::uint8_t>& b, std::size_t end, const std::string& origin)
      : b_(b), end_(end), origin_(origin) {}
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, b_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string get_string(const char* what) {
    auto n = get<std::uint32_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
    pos_ += n;
    return s;
  }
  std::size_t pos() const { return pos_; }

 private:
  void need(std::size_t n, const char* what) {
    if (n > end_ - pos_)
      throw Error(origin_ + ": corrupt checkpoint (" + what + " runs past the end)");
  }
  const std::vector<std::uint8_t>& b_;
  std::size_t end_;
  std::size_t pos_ = 0;
  const std::string& origin_;
};

std::size_t align_up(std::size_t n) {
  return (n + kDataAlign - 1) / kDataAlign * kDataAlign;
}

}  // namespace

const std::string* Checkpoint::find_meta(const std::string& key) const {
  for (auto& [k, v] : meta)
    if (k == key) return &v;
  return nullptr;
}

const std::string& Checkpoint::meta_at(const std::string& key) const {
  if (auto* v = find_meta(key)) return *v;
  throw Error("checkpoint has no '" + key + "' entry");
}

const Tensor* Checkpoint::find_tensor(const std::string& name) const {
  for (auto& [n, t] : tensors)
    if (n == name) return &t;
  return nullptr;
}

void Checkpoint::set_meta(const std::string& key, std::string value) {
  for (auto& [k, v] : meta)
    if (k == key) {
      v = std::move(value);
      return;
    }
  meta.emplace_back(key, std::move(value));
}

std::vector<std::uint8_t> encode_checkpoint(const Checkpoint& ckpt) {
  Writer w;
  w.buf.insert(w.buf.end(), kMagic, kMagic + 8);
  w.put<std::uint32_t>(kCheckpointVersion);
  w.put<std::uint32_t>(0);
  std::size_t size_at = w.buf.size();
  w.put<std::uint64_t>(0);  // file size, patched below
  w.put<std::uint32_t>(static_cast<std::uint32_t>(ckpt.meta.size()));
  for (auto& [k, v] : ckpt.meta) {
    w.put_string(k);
    w.put_string(v);
  }
  w.put<std::uint32_t>(static_cast<std::uint32_t>(ckpt.tensors.size()));
  std::size_t offset = 0;
  std::vector<std::size_t> offsets;
  for (auto& [name, t] : ckpt.tensors) {
    if (!t.defined()) throw Error("checkpoint tensor '" + name + "' is undefined");
    if (t.ndim() > kMaxDims)
      throw Error("checkpoint tensor '" + name + "' has too many dimensions");
    w.put_string(name);
    w.put<std::uint8_t>(static_cast<std::uint8_t>(t.dtype()));
    w.put<std::uint8_t>(static_cast<std::uint8_t>(t.ndim()));
    for (auto d : t.shape()) w.put<std::int64_t>(d);
    w.put<std::uint64_t>(offset);
    w.put<std::uint64_t>(t.nbytes());
    offsets.push_back(offset);
    offset = align_up(offset + t.nbytes());
  }
  std::size_t data_start = w.buf.size();
  w.buf.resize(data_start + offset, 0);
  for (std::size_t i = 0; i < ckpt.tensors.size(); ++i) {
    const Tensor& t = ckpt.tensors[i].second;
    if (t.nbytes()) std::memcpy(w.buf.data() + data_start + offsets[i], t.raw(), t.nbytes());
  }
  std::uint64_t total = w.buf.size() + sizeof(std::uint32_t);
  std::memcpy(w.buf.data() + size_at, &total, sizeof total);
  auto crc = static_cast<std::uint32_t>(crc32(0L, w.buf.data(), static_cast<uInt>(w.buf.size())));
  w.put<std::uint32_t>(crc);
  return std::move(w.buf);
}

void save_checkpoint(const std::filesystem::path& path, const Checkpoint& ckpt) {
  write_file_atomic(path, encode_checkpoint(ckpt));
}

Checkpoint decode_checkpoint(const std::vector<std::uint8_t>& b, const std::string& origin) {
  constexpr std::size_t kHeader = 8 + 4 + 4 + 8;
  if (b.size() < kHeader + 4)
    throw Error(origin + ": truncated checkpoint (" + std::to_string(b.size()) + " bytes)");
  if (std::memcmp(b.data(), kMagic, 8) != 0)
    throw Error(origin + ": not a .vckpt checkpoint (bad magic)");
  std::uint32_t version;
  std::memcpy(&version, b.data() + 8, 4);
  if (version != kCheckpointVersion)
    throw Error(origin + ": unsupported checkpoint version " + std::to_string(version) +
                " (this build reads version " + std::to_string(kCheckpointVersion) + ")");
  std::uint64_t declared;
  std::memcpy(&declared, b.data() + 16, 8);
  if (declared > b.size())
    throw Error(origin + ": truncated checkpoint (" + std::to_string(b.size()) + " of " +
                std::to_string(declared) + " bytes)");
  if (declared < b.size())
    throw Error(origin + ": corrupt checkpoint (" + std::to_string(b.size() - declared) +
                " unexpected bytes at the end)");
  std::size_t body = b.size() - 4;
  std::uint32_t stored;
  std::memcpy(&stored, b.data() + body, 4);
  auto actual = static_cast<std::uint32_t>(crc32(0L, b.data(), static_cast<uInt>(body)));
  if (stored != actual) throw Error(origin + ": corrupt checkpoint (checksum mismatch)");

  // The checksum passed, but the bounds are still checked: a crafted file must not crash us.
  Reader r(b, body, origin);
  r.get<std::uint64_t>("header");
  r.get<std::uint64_t>("header");
  r.get<std::uint64_t>("header");
  Checkpoint ckpt;
  auto n_meta = r.get<std::uint32_t>("metadata count");
  for (std::uint32_t i = 0; i < n_meta; ++i) {
    std::string k = r.get_string("metadata key");
    std::string v = r.get_string("metadata value");
    ckpt.meta.emplace_back(std::move(k), std::move(v));
  }
  struct Entry {
    std::string name;
    DType dtype;
    Shape shape;
    std::uint64_t offset, bytes;
  };
  std::vector<Entry> entries;
  auto n_tensors = r.get<std::uint32_t>("tensor count");
  for (std::uint32_t i = 0; i < n_tensors; ++i) {
    Entry e;
    e.name = r.get_string("tensor name");
    auto dt = r.get<std::uint8_t>("tensor dtype");
    if (dt > static_cast<std::uint8_t>(DType::u8))
      throw Error(origin + ": corrupt checkpoint (tensor '" + e.name + "' has unknown dtype " +
                  std::to_string(dt) + ")");
    e.dtype = static_cast<DType>(dt);
    auto nd = r.get<std::uint8_t>("tensor rank");
    if (nd > kMaxDims)
      throw Error(origin + ": corrupt checkpoint (tensor '" + e.name + "' rank " +
                  std::to_string(nd) + ")");
    std::uint64_t numel = 1;
    for (int d = 0; d < nd; ++d) {
      auto v = r.get<std::int64_t>("tensor shape");
      if (v < 0 || v > (std::int64_t{1} << 40) || (v && numel > (std::uint64_t{1} << 40) / v))
        throw Error(origin + ": corrupt checkpoint (tensor '" + e.name + "' has a bad shape)");
      e.shape.push_back(v);
      numel *= static_cast<std::uint64_t>(v);
    }
    e.offset = r.get<std::uint64_t>("tensor offset");
    e.bytes = r.get<std::uint64_t>("tensor size");
    if (e.bytes != numel * dtype_size(e.dtype))
      throw Error(origin + ": corrupt checkpoint (tensor '" + e.name +
                  "' size disagrees with its shape)");
    entries.push_back(std::move(e));
  }
  std::size_t data_start = r.pos();
  std::size_t data_len = body - data_start;
  for (auto& e : entries) {
    if (e.offset > data_len || e.bytes > data_len - e.offset)
      throw Error(origin + ": corrupt checkpoint (tensor '" + e.name +
                  "' lies outside the data block)");
    Tensor t(e.shape, e.dtype);
    if (e.bytes) std::memcpy(t.raw(), b.data() + data_start + e.offset, e.bytes);
    ckpt.tensors.emplace_back(e.name, std::move(t));
  }
  return ckpt;
}

Checkpoint load_checkpoint(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) throw Error(path.string() + ": no such checkpoint file");
  return decode_checkpoint(read_file_bytes(path), path.string());
}

bool has_checkpoint_magic(std::span<const std::uint8_t> bytes) {
  return bytes.size() >= sizeof kMagic && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0;
}

}  // namespace verdant::train
