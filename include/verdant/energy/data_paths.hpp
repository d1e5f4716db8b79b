#pragma once
// Where Verdant's bundled data (carbon tables, EIA series, hardware tables) lives.
#include <filesystem>

namespace verdant::energy {

// The data folder, first match wins:
//   1. the environment variable VERDANT_DATA_DIR (if set and non-empty);
//   2. the source tree's data/ (compile-time VERDANT_DATA_DIR_BUILD) if it exists;
//   3. the installed share/verdant folder (VERDANT_DATA_DIR_INSTALL).
// Throws verdant::Error if none of them exists.
std::filesystem::path data_dir();

// data_dir() / "carbon".
std::filesystem::path carbon_data_dir();

}  // namespace verdant::energy
