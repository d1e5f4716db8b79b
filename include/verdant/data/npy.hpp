#pragma once
// NumPy arrays: `.npy` files (format versions 1 to 3) and the arrays inside `.npz` archives,
// as NumPy writes them (np.save, np.savez, np.savez_compressed). A .npy file is mapped into
// memory, not copied. Supported element types: uint8, int64, float32 and float64, little
// endian, C order.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace verdant::data {

enum class NpyType { u8, i64, f32, f64 };
const char* npy_type_name(NpyType t);  // "uint8", ...
std::size_t npy_type_size(NpyType t);

class NpyArray {
 public:
  NpyType type() const { return type_; }
  const std::vector<std::int64_t>& shape() const { return shape_; }
  std::int64_t count() const;  // elements
  const std::uint8_t* data() const { return data_; }
  // Element i as a float.
  float at(std::int64_t i) const;
  // Elements [begin, begin + n) as floats into out.
  void to_float(std::int64_t begin, std::int64_t n, float* out) const;

  // Parses the bytes of a .npy file (kept alive by `owner`). Any defect: verdant::Error
  // "<origin>: <what is wrong>" (bad magic, unsupported dtype or version, Fortran order,
  // a shape that does not match the data, truncation).
  static NpyArray parse(std::shared_ptr<const void> owner, std::span<const std::uint8_t> bytes,
                        const std::string& origin);
  // An array over memory `owner` keeps alive (e.g. an IDX file's bytes).
  static NpyArray wrap(std::shared_ptr<const void> owner, NpyType type,
                       std::vector<std::int64_t> shape, const std::uint8_t* data);

 private:
  std::shared_ptr<const void> owner_;
  const std::uint8_t* data_ = nullptr;
  NpyType type_ = NpyType::u8;
  std::vector<std::int64_t> shape_;
};

// A .npy file, memory-mapped.
NpyArray read_npy(const std::filesystem::path& path);
// The array `name` ("x" or "x.npy") of a .npz archive. A missing name lists the archive's.
NpyArray read_npz(const std::filesystem::path& path, const std::string& name);
// The names of the arrays in a .npz archive, without ".npy".
std::vector<std::string> npz_names(const std::filesystem::path& path);

}  // namespace verdant::data
