// libFuzzer target for NumPy files: the .npy parser over the bytes in memory, and the same
// bytes as a .npz archive through libzip (first byte even: .npy, odd: .npz). Any input must
// either load, with every element readable, or fail with one verdant::Error.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "fuzz_temp_file.hpp"
#include "verdant/core/error.hpp"
#include "verdant/data/npy.hpp"

namespace {

void read_all(const verdant::data::NpyArray& a) {
  std::vector<float> chunk(4096);
  for (std::int64_t i = 0; i < a.count(); i += 4096) {
    const std::int64_t n = std::min<std::int64_t>(4096, a.count() - i);
    a.to_float(i, n, chunk.data());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace verdant;
  if (size == 0) return 0;
  try {
    if ((data[0] & 1) == 0) {
      auto owner = std::make_shared<std::vector<std::uint8_t>>(data + 1, data + size);
      auto array = data::NpyArray::parse(owner, std::span(*owner), "fuzz.npy");
      read_all(array);
    } else {
      const auto path = fuzz::write_input(data + 1, size - 1, ".npz");
      for (const auto& name : data::npz_names(path)) read_all(data::read_npz(path, name));
    }
  } catch (const Error&) {
    // A refused file is the expected outcome; anything else escaping is a finding.
  }
  return 0;
}
