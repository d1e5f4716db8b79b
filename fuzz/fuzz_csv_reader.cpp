// libFuzzer target for tabular data: CSV text (or gzip), with the header mode, the delimiter
// and the label column drawn from the first byte. Any input must either load, with every row
// readable, or fail with one verdant::Error.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz_temp_file.hpp"
#include "verdant/core/error.hpp"
#include "verdant/data/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace verdant;
  if (size == 0) return 0;
  data::CsvOptions options;
  const std::uint8_t knobs = data[0];
  options.header = static_cast<data::CsvOptions::Header>((knobs & 3) % 3);
  options.delimiter = (knobs & 4) != 0 ? ';' : ',';
  if ((knobs & 8) != 0) options.label_column = "0";
  if ((knobs & 16) != 0) options.label_column = "label";
  try {
    const auto path = fuzz::write_input(data + 1, size - 1, ".csv");
    auto table = data::CsvDataset::load(path, options);
    std::vector<float> x(static_cast<std::size_t>(shape_numel(table.sample_shape())));
    std::int32_t y = 0;
    for (std::int64_t i = 0; i < table.size(); ++i) table.fill(std::span(&i, 1), x.data(), &y);
  } catch (const Error&) {
    // A refused file is the expected outcome; anything else escaping is a finding.
  }
  return 0;
}
