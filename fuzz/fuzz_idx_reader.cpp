// libFuzzer target for the IDX reader (plain and gzip) and the image dataset built on what it
// reads: any input must either load or fail with one verdant::Error.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "verdant/core/error.hpp"
#include "verdant/data/dataset.hpp"
#include "verdant/data/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace verdant;
  try {
    data::IdxArray a = data::parse_idx(std::span(data, size), "fuzz.idx");
    if (a.dims.size() != 3 && a.dims.size() != 4) return 0;
    // As an image file, with as many labels as it has images; a label file that long would
    // be at least as large as the images, which bounds what a real load allocates.
    if (static_cast<std::uint64_t>(a.dims[0]) > a.bytes.size()) return 0;
    std::vector<std::uint8_t> labels(static_cast<std::size_t>(a.dims[0]), 0);
    data::ImageDataset images(a.dims, std::move(a.bytes), std::move(labels), 10, 0.5f, 0.25f);
    if (images.size() == 0) return 0;
    std::vector<float> x(static_cast<std::size_t>(shape_numel(images.sample_shape())));
    std::int32_t y = 0;
    const std::int64_t last = images.size() - 1;
    images.fill(std::span(&last, 1), x.data(), &y);
  } catch (const Error&) {
    // A refused file is the expected outcome; anything else escaping is a finding.
  }
  return 0;
}
