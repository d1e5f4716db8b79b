#include "verdant/data/npy.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <limits>
#include <optional>

#include "verdant/core/error.hpp"

namespace verdant::data {

namespace fs = std::filesystem;

const char* npy_type_name(NpyType t) {
  switch (t) {
    case NpyType::u8:
      return "uint8";
    case NpyType::i64:
      return "int64";
    case NpyType::f32:
      return "float32";
    case NpyType::f64:
      return "float64";
  }
  return "?";
}

std::size_t npy_type_size(NpyType t) {
  switch (t) {
    case NpyType::u8:
      return 1;
    case NpyType::i64:
    case NpyType::f64:
      return 8;
    case NpyType::f32:
      return 4;
  }
  return 0;
}

namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;

// The header is a Python dict literal, e.g.
//   {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }
// Only what NumPy writes is accepted: quoted strings, True/False and tuples of integers.
class HeaderParser {
 public:
  HeaderParser(std::string_view text, const std::string& origin) : s_(text), origin_(origin) {}

  void parse(std::string& descr, bool& fortran, std::vector<std::int64_t>& shape) {
    bool have_descr = false, have_order = false, have_shape = false;
    expect('{');
    while (true) {
      skip();
      if (peek() == '}') break;
      const std::string key = quoted();
      expect(':');
      if (key == "descr") {
        descr = quoted();
        have_descr = true;
      } else if (key == "fortran_order") {
        fortran = boolean();
        have_order = true;
      } else if (key == "shape") {
        shape = tuple();
        have_shape = true;
      } else {
        fail("unknown header key '" + key + "'");
      }
      skip();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != '}') fail("expected ',' or '}' in the header");
    }
    if (!have_descr || !have_order || !have_shape)
      fail("the header lacks 'descr', 'fortran_order' or 'shape'");
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(origin_ + ": not a valid .npy header: " + what);
  }
  void skip() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  char peek() {
    skip();
    return pos_ < s_.size() ? s_[pos_] : '\0';
  }
  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  std::string quoted() {
    const char q = peek();
    if (q != '\'' && q != '"') fail("expected a quoted name");
    const std::size_t end = s_.find(q, ++pos_);
    if (end == std::string_view::npos) fail("unterminated string");
    std::string out(s_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return out;
  }
  bool boolean() {
    skip();
    if (s_.substr(pos_, 4) == "True") return pos_ += 4, true;
    if (s_.substr(pos_, 5) == "False") return pos_ += 5, false;
    fail("expected True or False");
  }
  std::vector<std::int64_t> tuple() {
    expect('(');
    std::vector<std::int64_t> dims;
    while (true) {
      if (peek() == ')') break;
      std::int64_t v = 0;
      bool digits = false;
      while (pos_ < s_.size() && std::isdigit(static_cast<unsigned char>(s_[pos_]))) {
        if (v > (std::numeric_limits<std::int64_t>::max() - 9) / 10)
          fail("a dimension is too large");
        v = v * 10 + (s_[pos_++] - '0');
        digits = true;
      }
      if (!digits) fail("expected a dimension");
      dims.push_back(v);
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      if (peek() != ')') fail("expected ',' or ')' in the shape");
    }
    ++pos_;
    return dims;
  }

  std::string_view s_;
  std::size_t pos_ = 0;
  const std::string& origin_;
};

std::optional<NpyType> type_of(const std::string& descr) {
  // '|' means byte order does not apply; '<' little endian; '=' native (little here).
  if (descr == "|u1" || descr == "<u1" || descr == "u1") return NpyType::u8;
  if (descr == "<i8" || descr == "=i8") return NpyType::i64;
  if (descr == "<f4" || descr == "=f4") return NpyType::f32;
  if (descr == "<f8" || descr == "=f8") return NpyType::f64;
  return std::nullopt;
}

std::uint32_t little(const std::uint8_t* p, int bytes) {
  std::uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

}  // namespace

std::int64_t NpyArray::count() const {
  std::int64_t n = 1;
  for (auto d : shape_) n *= d;
  return n;
}

float NpyArray::at(std::int64_t i) const {
  float v;
  to_float(i, 1, &v);
  return v;
}

void NpyArray::to_float(std::int64_t begin, std::int64_t n, float* out) const {
  const std::uint8_t* p = data_ + static_cast<std::size_t>(begin) * npy_type_size(type_);
  switch (type_) {
    case NpyType::u8:
      for (std::int64_t i = 0; i < n; ++i) out[i] = p[i];
      return;
    case NpyType::i64:
      for (std::int64_t i = 0; i < n; ++i) {
        std::int64_t v;
        std::memcpy(&v, p + 8 * i, 8);
        out[i] = static_cast<float>(v);
      }
      return;
    case NpyType::f32:
      std::memcpy(out, p, static_cast<std::size_t>(n) * 4);
      return;
    case NpyType::f64:
      for (std::int64_t i = 0; i < n; ++i) {
        double v;
        std::memcpy(&v, p + 8 * i, 8);
        out[i] = static_cast<float>(v);
      }
      return;
  }
}

NpyArray NpyArray::parse(std::shared_ptr<const void> owner, std::span<const std::uint8_t> b,
                         const std::string& origin) {
  if (b.size() < kMagicSize + 4 || std::memcmp(b.data(), kMagic, kMagicSize) != 0)
    throw Error(origin + ": not a .npy file (bad magic)");
  const int major = b[6];
  if (major < 1 || major > 3)
    throw Error(origin + ": .npy format version " + std::to_string(major) + " is not supported");
  const int len_bytes = major == 1 ? 2 : 4;
  const std::size_t prefix = kMagicSize + 2 + static_cast<std::size_t>(len_bytes);
  if (b.size() < prefix) throw Error(origin + ": truncated .npy header");
  const std::size_t header_len = little(b.data() + kMagicSize + 2, len_bytes);
  if (header_len > b.size() - prefix) throw Error(origin + ": truncated .npy header");
  const std::string_view header(reinterpret_cast<const char*>(b.data() + prefix), header_len);
  std::string descr;
  bool fortran = false;
  NpyArray a;
  HeaderParser(header, origin).parse(descr, fortran, a.shape_);
  const auto type = type_of(descr);
  if (!type)
    throw Error(origin + ": dtype '" + descr +
                "' is not supported (uint8, int64, float32 or float64, little endian)");
  if (fortran)
    throw Error(origin +
                ": the array is in Fortran order; save it in C order "
                "(np.ascontiguousarray)");
  a.type_ = *type;
  const std::size_t element = npy_type_size(a.type_);
  std::size_t count = 1;
  for (auto d : a.shape_) {
    if (d != 0 &&
        count > std::numeric_limits<std::size_t>::max() / element / static_cast<std::size_t>(d))
      throw Error(origin + ": the array's shape is too large");
    count *= static_cast<std::size_t>(d);
  }
  const std::size_t have = b.size() - prefix - header_len;
  if (have != count * element)
    throw Error(origin + ": the data holds " + std::to_string(have) + " bytes, the shape needs " +
                std::to_string(count * element) + (have < count * element ? " (truncated)" : ""));
  a.owner_ = std::move(owner);
  a.data_ = b.data() + prefix + header_len;
  return a;
}

NpyArray NpyArray::wrap(std::shared_ptr<const void> owner, NpyType type,
                        std::vector<std::int64_t> shape, const std::uint8_t* data) {
  NpyArray a;
  a.owner_ = std::move(owner);
  a.type_ = type;
  a.shape_ = std::move(shape);
  a.data_ = data;
  return a;
}

NpyArray read_npy(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(path.string() + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error(path.string() + ": not a readable file");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  if (size == 0) {
    ::close(fd);
    throw Error(path.string() + ": empty file, not a .npy file");
  }
  void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) throw Error(path.string() + ": cannot map: " + std::strerror(errno));
  std::shared_ptr<const void> owner(
      map, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  return NpyArray::parse(owner, {static_cast<const std::uint8_t*>(map), size}, path.string());
}

}  // namespace verdant::data
