// libFuzzer target for the compression recipe parser (YAML through yaml-cpp, then Verdant's
// checks of every modifier): any text must parse or fail with one verdant::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "verdant/compress/recipe.hpp"
#include "verdant/core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace verdant;
  try {
    const compress::Recipe r = compress::parse_recipe(
        std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
    for (const auto& m : r.modifiers) (void)r.where(m, "sparsity");
  } catch (const Error&) {
    // A refused recipe is the expected outcome; anything else escaping is a finding.
  }
  return 0;
}
