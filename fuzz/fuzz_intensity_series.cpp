// libFuzzer target for the carbon-intensity series readers: EIA hourly CSV, Electricity Maps
// CSV, plain CSV and Carbon Aware SDK JSON. The first byte picks the format (or auto-detection
// by content); the rest is the file. A series that loads is queried as the scheduler would.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "verdant/core/error.hpp"
#include "verdant/energy/intensity.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace verdant::energy;
  if (size < 1) return 0;
  static constexpr SeriesFormat kFormats[] = {SeriesFormat::Auto, SeriesFormat::Eia,
                                              SeriesFormat::ElectricityMaps, SeriesFormat::Plain,
                                              SeriesFormat::CarbonAwareJson};
  SeriesOptions options;
  options.format = kFormats[data[0] % 5];
  const std::string name = options.format == SeriesFormat::CarbonAwareJson || data[0] % 10 == 5
                               ? "fuzz.json"
                               : "fuzz.csv";
  const std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    const IntensitySeries s = parse_intensity_series(text, name, options);
    (void)s.mean_known();
    (void)s.unknown_count();
    if (!s.empty()) {
      (void)s.index_of(s.start());
      (void)s.mean_over(s.start(), s.end());
    }
  } catch (const verdant::Error&) {
    // A refused file is the expected outcome; anything else escaping is a finding.
  }
  return 0;
}
