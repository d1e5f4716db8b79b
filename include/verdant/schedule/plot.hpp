#pragma once
// A hand-written SVG plot of intensity series with the chosen run window marked.
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "verdant/energy/intensity.hpp"
#include "verdant/schedule/window.hpp"

namespace verdant::schedule {

struct PlotSpec {
  std::vector<const energy::IntensitySeries*> zones;
  UtcSeconds from, to;              // x range
  std::optional<Candidate> chosen;  // shaded: [start, start + job_duration)
  std::chrono::seconds job_duration{0};
  std::optional<UtcSeconds> now;  // vertical marker for "start now"
  std::string title;
};

// Step lines per zone (gaps left blank), axes with UTC time and gCO2eq/kWh, a legend.
std::string render_svg(const PlotSpec& spec);
// Writes render_svg() atomically. Only ".svg" is supported: another extension is a
// verdant::UsageError naming `setting`.
void write_plot(const std::filesystem::path& path, const PlotSpec& spec,
                const std::string& setting = "plot");

}  // namespace verdant::schedule
