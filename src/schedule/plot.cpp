// SVG plot of intensity series and the chosen window (no plotting dependency needed).
#include "verdant/schedule/plot.hpp"
#include "verdant/core/text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"

namespace verdant::schedule {

namespace {

constexpr double kWidth = 900, kHeight = 420;
constexpr double kLeft = 70, kRight = 170, kTop = 40, kBottom = 60;
const char* const kColors[] = {"#1b9e77", "#d95f02", "#7570b3", "#e7298a",
                               "#66a61e", "#e6ab02", "#a6761d", "#666666"};

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

}  // namespace

std::string render_svg(const PlotSpec& spec) {
  if (spec.to <= spec.from) throw Error("plot: empty time range");
  const double span = static_cast<double>((spec.to - spec.from).count());
  double vmax = 0;
  for (const auto* s : spec.zones)
    for (std::size_t i = 0; i < s->size(); ++i)
      if (s->known(i) && s->time_at(i + 1) > spec.from && s->time_at(i) < spec.to)
        vmax = std::max(vmax, s->value(i));
  vmax = vmax > 0 ? std::ceil(vmax / 100) * 100 : 100;
  const double pw = kWidth - kLeft - kRight, ph = kHeight - kTop - kBottom;
  auto x = [&](UtcSeconds t) {
    double f = static_cast<double>((t - spec.from).count()) / span;
    return kLeft + std::clamp(f, 0.0, 1.0) * pw;
  };
  auto y = [&](double v) { return kTop + ph - v / vmax * ph; };

  std::string svg;
  svg += "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(kWidth) + "\" height=\"" +
         num(kHeight) + "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg += "<text x=\"" + num(kLeft) + "\" y=\"20\" font-size=\"14\">" + html_escape(spec.title) +
         "</text>\n";
  if (spec.chosen) {
    UtcSeconds a = spec.chosen->start, b = a + spec.job_duration;
    svg += "<rect class=\"chosen\" x=\"" + num(x(a)) + "\" y=\"" + num(kTop) + "\" width=\"" +
           num(std::max(1.0, x(b) - x(a))) + "\" height=\"" + num(ph) +
           "\" fill=\"#2ca02c\" fill-opacity=\"0.18\"/>\n";
    svg += "<text x=\"" + num(x(a) + 2) + "\" y=\"" + num(kTop + 12) +
           "\" fill=\"#2ca02c\">best: " + html_escape(spec.chosen->location) + "</text>\n";
  }
  if (spec.now) {
    svg += "<line class=\"now\" x1=\"" + num(x(*spec.now)) + "\" y1=\"" + num(kTop) + "\" x2=\"" +
           num(x(*spec.now)) + "\" y2=\"" + num(kTop + ph) +
           "\" stroke=\"#999\" stroke-dasharray=\"4 3\"/>\n";
  }
  // Axes, y ticks, x ticks (about 6, labelled with UTC date and hour).
  svg += "<path d=\"M" + num(kLeft) + " " + num(kTop) + " V" + num(kTop + ph) + " H" +
         num(kLeft + pw) + "\" stroke=\"black\" fill=\"none\"/>\n";
  for (int k = 0; k <= 4; ++k) {
    double v = vmax * k / 4;
    svg += "<text x=\"" + num(kLeft - 6) + "\" y=\"" + num(y(v) + 4) + "\" text-anchor=\"end\">" +
           num(v).substr(0, num(v).size() - 2) + "</text>\n";
  }
  svg += "<text x=\"14\" y=\"" + num(kTop + ph / 2) + "\" transform=\"rotate(-90 14 " +
         num(kTop + ph / 2) + ")\" text-anchor=\"middle\">gCO2eq/kWh</text>\n";
  for (int k = 0; k <= 6; ++k) {
    UtcSeconds t = spec.from + std::chrono::seconds(static_cast<long>(span * k / 6));
    std::string label = energy::format_utc_timestamp(t).substr(5, 11);  // MM-DDTHH:MM
    label[5] = ' ';
    svg += "<text x=\"" + num(x(t)) + "\" y=\"" + num(kTop + ph + 16) +
           "\" text-anchor=\"middle\">" + label + "</text>\n";
  }
  svg += "<text x=\"" + num(kLeft + pw / 2) + "\" y=\"" + num(kHeight - 16) +
         "\" text-anchor=\"middle\">time (UTC)</text>\n";
  // One step line per zone; a gap (unknown slot) breaks the line.
  for (std::size_t z = 0; z < spec.zones.size(); ++z) {
    const auto* s = spec.zones[z];
    const char* color = kColors[z % std::size(kColors)];
    std::string d;
    bool pen = false;
    for (std::size_t i = 0; i < s->size(); ++i) {
      UtcSeconds a = s->time_at(i), b = s->time_at(i + 1);
      if (b <= spec.from || a >= spec.to) continue;
      if (!s->known(i)) {
        pen = false;
        continue;
      }
      double yv = y(s->value(i));
      d += (pen ? " L" : " M") + num(x(std::max(a, spec.from))) + " " + num(yv) + " L" +
           num(x(std::min(b, spec.to))) + " " + num(yv);
      pen = true;
    }
    svg += "<path class=\"series\" d=\"" + d + "\" stroke=\"" + color +
           "\" fill=\"none\" stroke-width=\"1.5\"/>\n";
    double ly = kTop + 14 + 16 * static_cast<double>(z);
    svg += "<line x1=\"" + num(kLeft + pw + 12) + "\" y1=\"" + num(ly - 4) + "\" x2=\"" +
           num(kLeft + pw + 32) + "\" y2=\"" + num(ly - 4) + "\" stroke=\"" + color +
           "\" stroke-width=\"2\"/>\n";
    svg += "<text x=\"" + num(kLeft + pw + 36) + "\" y=\"" + num(ly) + "\">" +
           html_escape(s->name()) + "</text>\n";
  }
  svg += "</svg>\n";
  return svg;
}

void write_plot(const std::filesystem::path& path, const PlotSpec& spec,
                const std::string& setting) {
  std::string ext = path.extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext != ".svg")
    throw SettingError(setting, setting + ": only .svg plots are supported, not '" +
                                    path.filename().string() + "'");
  write_file_atomic(path, render_svg(spec));
}

}  // namespace verdant::schedule
