// SVG plot: well-formed, marks the chosen window, leaves gaps blank, refuses other formats.
#include "verdant/schedule/plot.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"

using namespace verdant;
using namespace verdant::schedule;
using namespace std::chrono;

namespace {
std::size_t count(const std::string& s, const std::string& part) {
  std::size_t n = 0;
  for (auto p = s.find(part); p != std::string::npos; p = s.find(part, p + 1)) ++n;
  return n;
}
}  // namespace

TEST(Plot, SvgHasSeriesWindowAndGaps) {
  auto t0 = energy::parse_utc_timestamp("2022-01-01T00:00:00Z").value();
  energy::IntensitySeries a("A&B", "a.csv", t0, hours(1), {100, 200, std::nan(""), 300});
  energy::IntensitySeries b("B", "b.csv", t0, hours(1), {50, 60, 70, 80});
  PlotSpec spec;
  spec.zones = {&a, &b};
  spec.from = t0;
  spec.to = t0 + hours(4);
  spec.chosen = Candidate{1, "B", t0 + hours(1), 0, 0};
  spec.job_duration = hours(2);
  spec.now = t0;
  spec.title = "test <plot>";
  auto svg = render_svg(spec);
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  EXPECT_EQ(count(svg, "class=\"series\""), 2u);
  EXPECT_EQ(count(svg, "class=\"chosen\""), 1u);
  EXPECT_NE(svg.find("test &lt;plot&gt;"), std::string::npos);
  EXPECT_NE(svg.find("A&amp;B"), std::string::npos);
  // Zone A's line is broken by its gap: two separate "M" moves.
  auto first = svg.find("class=\"series\" d=\"");
  auto line = svg.substr(first, svg.find('"', first + 18) - first);
  EXPECT_EQ(count(line, "M"), 2u) << line;

  auto path = std::filesystem::temp_directory_path() /
              ("verdant-plot-" + std::to_string(::getpid()) + ".svg");
  write_plot(path, spec);
  EXPECT_EQ(read_file_text(path), svg);
  std::filesystem::remove(path);
  EXPECT_THROW(write_plot("/tmp/x.png", spec), UsageError);
}
