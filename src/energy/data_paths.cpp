// Locates Verdant's data folder (env override, source tree, install tree).
#include "verdant/energy/data_paths.hpp"

#include <cstdlib>
#include <string>

#include "verdant/core/error.hpp"

namespace verdant::energy {

std::filesystem::path data_dir() {
  if (const char* env = std::getenv("VERDANT_DATA_DIR"); env && *env) {
    std::filesystem::path dir(env);
    if (!std::filesystem::is_directory(dir))
      throw Error("VERDANT_DATA_DIR=" + dir.string() + " is not a directory");
    return dir;
  }
#ifdef VERDANT_DATA_DIR_BUILD
  if (std::filesystem::is_directory(VERDANT_DATA_DIR_BUILD)) return VERDANT_DATA_DIR_BUILD;
#endif
#ifdef VERDANT_DATA_DIR_INSTALL
  if (std::filesystem::is_directory(VERDANT_DATA_DIR_INSTALL)) return VERDANT_DATA_DIR_INSTALL;
#endif
  throw Error(
      "cannot find Verdant's data folder: set VERDANT_DATA_DIR (looked in the build and install "
      "trees)");
}

std::filesystem::path carbon_data_dir() {
  return data_dir() / "carbon";
}

}  // namespace verdant::energy
