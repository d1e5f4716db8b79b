// libFuzzer target for the sweep's files: a sweep specification (YAML, first byte even) and a
// trial's result (JSON, first byte odd), as `verdant sweep` and `verdant report` read them.
// Any input must either parse or fail with one verdant::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "verdant/core/error.hpp"
#include "verdant/sweep/run.hpp"
#include "verdant/sweep/spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace verdant;
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  try {
    if ((data[0] & 1) == 0) {
      sweep::parse_sweep(text, "fuzz.yaml");
    } else {
      sweep::parse_trial(text, "fuzz.json");
    }
  } catch (const Error&) {
    // A refused file is the expected outcome; anything else escaping is a finding.
  }
  return 0;
}
