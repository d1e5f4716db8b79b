#include "verdant/report/report.hpp"
#include "verdant/core/text.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/sweep/run.hpp"
#include "verdant/train/checkpoint.hpp"
#include "verdant/version.hpp"

namespace verdant::report {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string joules(double j) {
  if (j >= 3.6e6) return format_number("%.3g kWh", j / 3.6e6);
  if (j >= 1e3) return format_number("%.3g kJ", j / 1e3);
  return format_number("%.3g J", j);
}

// One CSV line, with quoted fields (CodeCarbon quotes none, but a user's tool might).
std::vector<std::string> csv_cells(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (c == '"') {
      if (quoted && i + 1 < line.size() && line[i + 1] == '"') {
        out.back() += '"';
        ++i;
      } else {
        quoted = !quoted;
      }
    } else if (c == ',' && !quoted) {
      out.emplace_back();
    } else if (c != '\r') {
      out.back() += c;
    }
  }
  return out;
}

// The last row of emissions.csv as column -> value.
std::map<std::string, std::string> last_emissions_row(const fs::path& file) {
  std::map<std::string, std::string> row;
  if (!fs::exists(file)) return row;
  std::istringstream in(read_file_text(file));
  std::string header, line, last;
  std::getline(in, header);
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  const auto names = csv_cells(header), cells = csv_cells(last);
  for (std::size_t i = 0; i < names.size() && i < cells.size(); ++i) row[names[i]] = cells[i];
  return row;
}

std::string text(const std::map<std::string, std::string>& row, const std::string& key) {
  const auto it = row.find(key);
  return it == row.end() ? "" : it->second;
}

// Curves, energy and sources of one run folder (train, compress or a sweep trial's).
void read_run_folder(const fs::path& dir, RunRecord& r) {
  const fs::path results = dir / "results.json";
  if (fs::exists(results)) {
    try {
      const json j = json::parse(read_file_text(results));
      for (const auto& e : j.at("epochs")) {
        EpochPoint p;
        p.epoch = e.at("epoch");
        p.train_loss = e.at("train_loss");
        if (e.contains("test_accuracy")) p.test_accuracy = e.at("test_accuracy");
        r.epochs.push_back(p);
      }
      if (j.contains("test")) r.accuracy = j.at("test").at("accuracy");
      r.train_seconds = j.at("timing").at("this_process_seconds");
    } catch (const json::exception& e) {
      throw Error(results.string() + ": not a run's results (" + e.what() + ")");
    }
  }
  const fs::path energy = dir / "energy.jsonl";
  if (fs::exists(energy)) {
    std::istringstream in(read_file_text(energy));
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.empty()) continue;
      json j;
      try {
        j = json::parse(line);
      } catch (const json::exception& e) {
        throw Error(energy.string() + ":" + std::to_string(n) + ": not a JSON record");
      }
      const std::string phase = j.value("phase", "");
      const double total = j.at("process_joules").value("cpu", 0.0) +
                           j.at("process_joules").value("gpu", 0.0) +
                           j.at("process_joules").value("dram", 0.0);
      if (phase.rfind("epoch ", 0) == 0) {
        const int e = std::atoi(phase.c_str() + 6);
        for (auto& p : r.epochs)
          if (p.epoch == e) p.joules = total;
      } else if (phase == "total") {
        r.train_joules = total;
        r.cpu_kwh = j.at("process_joules").value("cpu", 0.0) / 3.6e6;
        r.gpu_kwh = j.at("process_joules").value("gpu", 0.0) / 3.6e6;
        r.ram_kwh = j.at("process_joules").value("dram", 0.0) / 3.6e6;
        const auto& s = j.at("sources");
        auto source = [&](const char* d) {
          return s.at(d).value("kind", "") + std::string(": ") + s.at(d).value("source", "");
        };
        r.cpu_source = source("cpu");
        r.gpu_source = source("gpu");
        r.ram_source = source("dram");
        r.gco2 = j.value("emissions_kg", 0.0) * 1000.0;
        r.carbon = j.value("carbon_intensity", "");
        r.pue = j.value("pue_source", "");
      }
    }
  }
  const auto row = last_emissions_row(dir / "emissions.csv");
  if (!row.empty()) {
    const std::string cpu = text(row, "cpu_model"), gpu = text(row, "gpu_model");
    r.hardware = text(row, "cpu_count") + " x " + cpu + (gpu.empty() ? "" : ", " + gpu);
    std::string where = text(row, "country_name");
    if (!text(row, "region").empty()) where += ", " + text(row, "region");
    if (!text(row, "cloud_provider").empty())
      where += " (" + text(row, "cloud_provider") + " " + text(row, "cloud_region") + ")";
    r.location = where;
  }
  if (fs::exists(dir / "carbon_aware.json"))
    r.carbon_aware_json = read_file_text(dir / "carbon_aware.json");
  // Per-layer sparsity: the compress report, else the checkpoint's weights.
  if (r.layer_sparsity.empty() && fs::exists(dir / "report.json")) {
    const json j = json::parse(read_file_text(dir / "report.json"));
    if (j.contains("layers"))
      for (const auto& l : j.at("layers"))
        r.layer_sparsity.emplace_back(l.at("name"), l.at("sparsity"));
  }
  if (r.layer_sparsity.empty() && fs::exists(dir / "checkpoint.vckpt")) {
    const train::Checkpoint c = train::load_checkpoint(dir / "checkpoint.vckpt");
    for (const auto& [name, t] : c.tensors) {
      if (name.rfind("param/", 0) != 0 || t.ndim() < 2 || t.dtype() != DType::f32) continue;
      std::int64_t zeros = 0;
      for (std::int64_t i = 0; i < t.numel(); ++i) zeros += t.data<float>()[i] == 0.f;
      r.layer_sparsity.emplace_back(name.substr(6), double(zeros) / double(t.numel()));
    }
  }
}

}  // namespace

ReportData read_folders(const std::vector<fs::path>& dirs) {
  ReportData d;
  for (const auto& dir : dirs) {
    d.source += (d.source.empty() ? "" : ", ") + dir.string();
    if (fs::exists(dir / "sweep.json")) {
      d.sweep = true;
      const sweep::SweepReport s = sweep::read_results(dir);
      for (const auto& t : s.trials) {
        RunRecord r;
        r.name = t.id;
        r.candidate = t.candidate;
        r.layer_sparsity = t.layer_sparsity;
        read_run_folder(t.folder, r);
        r.accuracy = t.accuracy;
        r.train_joules = t.train_joules;
        r.train_seconds = t.train_seconds;
        r.train_flops = t.train_flops;
        d.runs.push_back(std::move(r));
      }
    } else if (fs::exists(dir / "results.json")) {
      RunRecord r;
      r.name = dir.filename().string();
      if (r.name.empty()) r.name = dir.parent_path().filename().string();
      r.candidate = r.name;
      read_run_folder(dir, r);
      d.runs.push_back(std::move(r));
    } else {
      throw Error(dir.string() +
                  ": neither a sweep's results (sweep.json) nor a run's output "
                  "folder (results.json)");
    }
  }
  return d;
}

namespace {

struct Axis {
  double lo = 0, hi = 1;
  bool log = false;
  double map(double v, double a, double b) const {
    double t;
    if (log) {
      const double l = std::log10(std::max(v, 1e-12)), l0 = std::log10(lo), l1 = std::log10(hi);
      t = l1 > l0 ? (l - l0) / (l1 - l0) : 0.5;
    } else {
      t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    }
    return a + t * (b - a);
  }
};

Axis axis_for(const std::vector<double>& v, bool allow_log) {
  Axis a;
  if (v.empty()) return a;
  a.lo = *std::min_element(v.begin(), v.end());
  a.hi = *std::max_element(v.begin(), v.end());
  if (allow_log && a.lo > 0 && a.hi / a.lo > 20) {
    a.log = true;
    a.lo /= 1.3;
    a.hi *= 1.3;
  } else {
    const double pad = a.hi > a.lo ? (a.hi - a.lo) * 0.08 : std::max(std::fabs(a.hi) * 0.1, 1e-9);
    a.lo -= pad;
    a.hi += pad;
  }
  return a;
}

// Accuracy: at least 5 points tall, padded so that marks stay off the frame; no tick beyond
// 0% or 100% is labelled.
Axis accuracy_axis(const std::vector<double>& v) {
  Axis a = axis_for(v, false);
  if (a.hi - a.lo < 0.05) {
    const double mid = (a.hi + a.lo) / 2;
    a.lo = mid - 0.025;
    a.hi = mid + 0.025;
  }
  if (a.lo < 0) a.lo = -0.02;
  return a;
}

bool labelled(double accuracy) {
  return accuracy >= -1e-9 && accuracy <= 1 + 1e-9;
}

// A colour per run, the same in every chart.
const char* colour(std::size_t i) {
  static const char* kPalette[] = {"#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                                   "#e377c2", "#7f7f7f", "#bcbd22", "#17becf", "#ff7f0e"};
  return kPalette[i % 10];
}

struct Mark {
  std::string id, label, tip;
  double x = 0, y = 0;
  bool front = false, pick = false;
};

constexpr int kW = 430, kH = 300, kL = 62, kR = 14, kT = 28, kB = 44;

// A chart's <svg> opening, its title and the plot frame.
std::string chart_open(const std::string& title) {
  std::string s = "<svg class=\"chart\" viewBox=\"0 0 " + std::to_string(kW) + " " +
                  std::to_string(kH) + "\" role=\"img\" aria-label=\"" + html_escape(title) + "\">";
  s += "<text class=\"title\" x=\"" + std::to_string(kL) + "\" y=\"18\">" + html_escape(title) +
       "</text>";
  s += "<rect class=\"frame\" x=\"" + std::to_string(kL) + "\" y=\"" + std::to_string(kT) +
       "\" width=\"" + std::to_string(kW - kL - kR) + "\" height=\"" +
       std::to_string(kH - kT - kB) + "\"/>";
  return s;
}

std::string scatter(const std::string& title, const std::string& x_label, std::vector<Mark> marks) {
  std::vector<double> xs, ys;
  for (const auto& m : marks) {
    xs.push_back(m.x);
    ys.push_back(m.y);
  }
  const Axis ax = axis_for(xs, true), ay = accuracy_axis(ys);
  std::string s = chart_open(title);
  for (int i = 0; i <= 4; ++i) {  // ticks
    const double fx = double(i) / 4, fy = double(i) / 4;
    const double vx =
        ax.log ? std::pow(10, std::log10(ax.lo) + fx * (std::log10(ax.hi) - std::log10(ax.lo)))
               : ax.lo + fx * (ax.hi - ax.lo);
    const double vy = ay.lo + fy * (ay.hi - ay.lo);
    const double px = kL + fx * (kW - kL - kR), py = kH - kB - fy * (kH - kT - kB);
    s += "<text class=\"tick\" x=\"" + format_number("%.1f", px) + "\" y=\"" +
         std::to_string(kH - kB + 14) + "\" text-anchor=\"middle\">" + format_number("%.3g", vx) +
         "</text>";
    if (labelled(vy))
      s += "<text class=\"tick\" x=\"" + std::to_string(kL - 4) + "\" y=\"" +
           format_number("%.1f", py + 3) + "\" text-anchor=\"end\">" +
           format_number("%.2f%%", 100 * vy) + "</text>";
  }
  s += "<text class=\"axis\" x=\"" + std::to_string((kL + kW - kR) / 2) + "\" y=\"" +
       std::to_string(kH - 8) + "\" text-anchor=\"middle\">" + html_escape(x_label) +
       (ax.log ? " (log scale)" : "") + "</text>";
  s += "<text class=\"axis\" transform=\"translate(12 " + std::to_string((kT + kH - kB) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">test accuracy</text>";
  auto px = [&](double v) { return ax.map(v, kL, kW - kR); };
  auto py = [&](double v) { return ay.map(v, kH - kB, kT); };
  // The front as a staircase from cheap to accurate.
  std::vector<const Mark*> front;
  for (const auto& m : marks)
    if (m.front) front.push_back(&m);
  std::sort(front.begin(), front.end(), [](const Mark* a, const Mark* b) { return a->x < b->x; });
  if (front.size() > 1) {
    std::string pts;
    for (const Mark* m : front)
      pts += format_number("%.1f,", px(m->x)) + format_number("%.1f ", py(m->y));
    s += "<polyline class=\"front\" points=\"" + pts + "\"/>";
  }
  for (const auto& m : marks) {
    s += "<circle class=\"mark" + std::string(m.front ? " on-front" : "") +
         std::string(m.pick ? " pick" : "") + "\" data-trial=\"" + html_escape(m.id) + "\" cx=\"" +
         format_number("%.1f", px(m.x)) + "\" cy=\"" + format_number("%.1f", py(m.y)) + "\" r=\"" +
         (m.pick ? "7" : "4.5") + "\"><title>" + html_escape(m.tip) + "</title></circle>";
    if (m.front || m.pick)
      s += "<text class=\"label\" x=\"" + format_number("%.1f", px(m.x) + 7) + "\" y=\"" +
           format_number("%.1f", py(m.y) - 6) + "\">" + html_escape(m.label) + "</text>";
  }
  return s + "</svg>";
}

std::string line_chart(
    const std::string& title, const std::string& y_label, bool percent,
    const std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>>& series) {
  std::vector<double> xs, ys;
  for (const auto& [name, pts] : series)
    for (const auto& [x, y] : pts) {
      xs.push_back(x);
      ys.push_back(y);
    }
  if (xs.empty()) return "";
  Axis ax = axis_for(xs, false);
  const Axis ay = percent ? accuracy_axis(ys) : axis_for(ys, false);
  ax.lo = *std::min_element(xs.begin(), xs.end()) - 0.25;  // whole epochs, a little margin
  ax.hi = *std::max_element(xs.begin(), xs.end()) + 0.25;
  std::string s = chart_open(title);
  for (int i = 0; i <= 4; ++i) {
    const double f = double(i) / 4;
    const double vy = ay.lo + f * (ay.hi - ay.lo);
    if (!percent || labelled(vy))
      s += "<text class=\"tick\" x=\"" + std::to_string(kL - 4) + "\" y=\"" +
           format_number("%.1f", kH - kB - f * (kH - kT - kB) + 3) + "\" text-anchor=\"end\">" +
           (percent ? format_number("%.1f%%", 100 * vy) : format_number("%.3g", vy)) + "</text>";
  }
  const int first = static_cast<int>(std::ceil(ax.lo)), last = static_cast<int>(std::floor(ax.hi));
  const int every = std::max(1, (last - first) / 8 + 1);
  for (int e = first; e <= last; e += every)
    s += "<text class=\"tick\" x=\"" + format_number("%.1f", ax.map(e, kL, kW - kR)) + "\" y=\"" +
         std::to_string(kH - kB + 14) + "\" text-anchor=\"middle\">" + std::to_string(e) +
         "</text>";
  s += "<text class=\"axis\" x=\"" + std::to_string((kL + kW - kR) / 2) + "\" y=\"" +
       std::to_string(kH - 8) + "\" text-anchor=\"middle\">epoch</text>";
  s += "<text class=\"axis\" transform=\"translate(12 " + std::to_string((kT + kH - kB) / 2) +
       ") rotate(-90)\" text-anchor=\"middle\">" + html_escape(y_label) + "</text>";
  for (std::size_t i = 0; i < series.size(); ++i) {
    const auto& [name, pts] = series[i];
    if (pts.empty()) continue;
    std::string p;
    for (const auto& [x, y] : pts)
      p += format_number("%.1f,", ax.map(x, kL, kW - kR)) +
           format_number("%.1f ", ay.map(y, kH - kB, kT));
    s += "<polyline class=\"curve\" style=\"stroke:" + std::string(colour(i)) + "\" data-trial=\"" +
         html_escape(name) + "\" points=\"" + p + "\"><title>" + html_escape(name) +
         "</title></polyline>";
  }
  return s + "</svg>";
}

constexpr const char* kStyle = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px auto;max-width:1340px;color:#1b2a1f;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #cfe3d3;padding-bottom:4px}
.summary{background:#eef7f0;border-left:4px solid #2e7d4f;padding:10px 14px;margin:10px 0}
.muted{color:#5b6b60;font-size:12px}
.grid{display:flex;flex-wrap:wrap;gap:10px}
.chart{width:430px;height:300px;background:#fff;border:1px solid #dbe7dd;border-radius:6px}
.chart .frame{fill:none;stroke:#c9d6cc} .chart .title{font-weight:600;font-size:13px}
.chart .tick{font-size:10px;fill:#5b6b60} .chart .axis{font-size:11px;fill:#34463a}
.chart .mark{fill:#6c8fb3;opacity:.85;stroke:#fff;stroke-width:1}
.chart .mark.on-front{fill:#2e7d4f} .chart .mark.pick{fill:#e0a100;stroke:#7a5600;stroke-width:2}
.chart .front{fill:none;stroke:#2e7d4f;stroke-width:1.5;stroke-dasharray:4 3}
.chart .label{font-size:10px;fill:#1b2a1f}
.chart .curve{fill:none;stroke:#6c8fb3;stroke-width:1.4;opacity:.75}
.hl{stroke:#d33 !important;stroke-width:3 !important;opacity:1 !important}
table{border-collapse:collapse;font-size:12.5px;margin-top:6px}
th,td{border-bottom:1px solid #e3ece5;padding:4px 8px;text-align:right} th:first-child,td:first-child{text-align:left}
th{background:#f3f8f4} tr.pick td{background:#fff6d8;font-weight:600}
.bar{display:inline-block;height:10px;background:#2e7d4f;vertical-align:middle}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;font-size:12px;margin:6px 0}
.legend i{display:inline-block;width:14px;height:3px;margin-right:5px;vertical-align:middle}
)";

// Highlights a trial in every chart while the pointer is on one of its marks or rows.
constexpr const char* kScript = R"(
document.querySelectorAll('[data-trial]').forEach(function(e){
  function on(v){document.querySelectorAll('[data-trial="'+e.dataset.trial+'"]').forEach(function(x){x.classList.toggle('hl',v)})}
  e.addEventListener('mouseenter',function(){on(true)});e.addEventListener('mouseleave',function(){on(false)});
});
)";

}  // namespace

std::string html_report(const std::vector<fs::path>& dirs) {
  const ReportData data = read_folders(dirs);
  std::optional<sweep::SweepReport> sweep_report;
  for (const auto& d : dirs)
    if (fs::exists(d / "sweep.json")) sweep_report = sweep::read_results(d);
  std::string h =
      "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Verdant "
      "report</title><style>";
  h += kStyle;
  h += "</style></head><body><h1>Verdant report</h1><div class=\"muted\">" +
       html_escape(data.source) + " &middot; verdant " + kVersion + "</div>";

  if (sweep_report) {
    const auto& r = *sweep_report;
    h += "<div class=\"summary\">";
    if (r.pick)
      h += "<div>" + html_escape(r.pick->reason) + "</div><div>" + html_escape(r.break_even.text) +
           "</div>";
    else
      h += "<div>No candidate within the accuracy budget (" + html_escape(r.spec.budget.text()) +
           ").</div>";
    h += "</div>";
    // One mark per trial, the front over the candidates' means.
    std::map<std::string, std::size_t> summary_of;
    for (std::size_t i = 0; i < r.summaries.size(); ++i)
      for (const auto& id : r.summaries[i].trials) summary_of[id] = i;
    auto marks = [&](double (*cost)(const sweep::TrialResult&),
                     const std::vector<std::size_t>& front, const char* unit) {
      std::vector<Mark> m;
      for (const auto& t : r.trials) {
        const std::size_t si = summary_of[t.id];
        Mark k;
        k.id = t.id;
        k.label = t.candidate;
        k.x = cost(t);
        k.y = t.accuracy;
        k.front = std::find(front.begin(), front.end(), si) != front.end();
        k.pick = r.pick && r.pick->index == si;
        k.tip = t.id + "\naccuracy " + format_number("%.2f%%", 100 * t.accuracy) + "\n" +
                format_number("%.4g ", cost(t)) + unit;
        m.push_back(std::move(k));
      }
      return m;
    };
    h += "<h2>Accuracy against cost</h2><div class=\"muted\">Each point is a trial; green points "
         "are on the Pareto front (no other candidate is both more accurate and cheaper), the "
         "gold one is the pick. Hover a point to see it in every chart.</div><div class=\"grid\">";
    h += scatter("Training energy", "joules (the training loop, process share)",
                 marks([](const sweep::TrialResult& t) { return t.train_joules; },
                       r.front_train_energy, "J training"));
    h += scatter("Inference energy", "joules per 1,000 inferences",
                 marks([](const sweep::TrialResult& t) { return t.inference_joules_per_1000; },
                       r.front_inference_energy, "J per 1,000 inferences"));
    h += scatter(
        "Model size", "bytes (.vdm)",
        marks([](const sweep::TrialResult& t) { return double(t.bytes); }, r.front_bytes, "bytes"));
    h += scatter(
        "Latency", "microseconds per inference (batch 1, 1 thread)",
        marks([](const sweep::TrialResult& t) { return t.latency_us; }, r.front_latency, "us"));
    h += "</div>";
    if (r.edge_or_cloud) h += "<p>" + html_escape(r.edge_or_cloud->text) + "</p>";
  }

  // Training curves and energy per epoch.
  std::vector<std::pair<std::string, std::vector<std::pair<double, double>>>> loss, acc, energy;
  for (const auto& run : data.runs) {
    std::vector<std::pair<double, double>> l, a, e;
    for (const auto& p : run.epochs) {
      l.emplace_back(p.epoch, p.train_loss);
      if (p.test_accuracy >= 0) a.emplace_back(p.epoch, p.test_accuracy);
      if (p.joules >= 0) e.emplace_back(p.epoch, p.joules);
    }
    loss.emplace_back(run.name, l);
    acc.emplace_back(run.name, a);
    energy.emplace_back(run.name, e);
  }
  h += "<h2>Training</h2><div class=\"grid\">";
  h += line_chart("Training loss", "mean cross-entropy", false, loss);
  h += line_chart("Test accuracy after each epoch", "test accuracy", true, acc);
  h += line_chart("Energy per epoch", "joules (process share)", false, energy);
  h += "</div><div class=\"legend\">";
  for (std::size_t i = 0; i < data.runs.size(); ++i)
    h += "<span data-trial=\"" + html_escape(data.runs[i].name) +
         "\"><i style=\"background:" + std::string(colour(i)) + "\"></i>" +
         html_escape(data.runs[i].name) + "</span>";
  h += "</div>";

  // Per-layer sparsity, and the table of runs.
  h += "<h2>Runs</h2><table><tr><th>run</th><th>test acc</th><th>train energy</th><th>train "
       "time</th>";
  if (sweep_report) h += "<th>J / 1k inf</th><th>latency us</th><th>bytes</th><th>nonzero</th>";
  h += "<th>layer sparsity</th></tr>";
  for (std::size_t i = 0; i < data.runs.size(); ++i) {
    const auto& run = data.runs[i];
    const sweep::TrialResult* t = sweep_report ? &sweep_report->trials[i] : nullptr;
    bool is_pick = false;
    if (sweep_report && sweep_report->pick) {
      const auto& ids = sweep_report->summaries[sweep_report->pick->index].trials;
      is_pick = std::find(ids.begin(), ids.end(), run.name) != ids.end();
    }
    h += std::string("<tr") + (is_pick ? " class=\"pick\"" : "") + " data-trial=\"" +
         html_escape(run.name) + "\"><td>" + html_escape(run.name) + "</td><td>" +
         format_number("%.2f%%", 100 * run.accuracy) + "</td><td>" + joules(run.train_joules) +
         "</td><td>" + format_number("%.1f s", run.train_seconds) + "</td>";
    if (t)
      h += "<td>" + format_number("%.3g", t->inference_joules_per_1000) + "</td><td>" +
           format_number("%.2f", t->latency_us) + "</td><td>" + std::to_string(t->bytes) +
           "</td><td>" + std::to_string(t->nonzero) + "</td>";
    std::string layers;
    for (const auto& [name, s] : run.layer_sparsity)
      layers += html_escape(name) +
                " <span class=\"bar\" style=\"width:" + format_number("%.0f", 40 * s) +
                "px\"></span> " + format_number("%.0f%%", 100 * s) + " &nbsp; ";
    h += "<td style=\"text-align:left\">" + layers + "</td></tr>";
  }
  h += "</table>";

  // Carbon-aware placement.
  for (const auto& run : data.runs) {
    if (run.carbon_aware_json.empty()) continue;
    const json j = json::parse(run.carbon_aware_json);
    h += "<h2>Carbon-aware placement: " + html_escape(run.name) + "</h2><p>" +
         html_escape(j.value("policy", "")) + " on " + html_escape(j.value("zone", "")) + ": ran " +
         html_escape(j.value("started", "")) + " to " + html_escape(j.value("finished", "")) +
         ", " + std::to_string(j.value("pauses", 0)) + " pause(s), " +
         format_number("%.1f", j.value("emissions_g", 0.0)) + " gCO2eq against " +
         format_number("%.1f", j.value("emissions_g_at_once", 0.0)) + " starting at once (" +
         format_number("%.1f%%", j.value("saving_percent", 0.0)) + " saved; " +
         html_escape(j.value("emissions_source", "")) + ")</p>";
  }

  h += "<h2>How the figures were obtained</h2><ul class=\"muted\">";
  std::map<std::string, int> labels;
  if (sweep_report)
    for (const auto& t : sweep_report->trials) {
      labels["training: " + t.train_energy_label]++;
      labels["inference: " + t.inference_energy_label]++;
    }
  for (const auto& run : data.runs)
    if (!run.cpu_source.empty()) labels["cpu " + run.cpu_source + "; ram " + run.ram_source]++;
  for (const auto& [l, n] : labels) h += "<li>" + html_escape(l) + "</li>";
  h += "</ul><script>";
  h += kScript;
  h += "</script></body></html>\n";
  return h;
}

std::string compute_appendix(const std::vector<fs::path>& dirs) {
  const ReportData data = read_folders(dirs);
  std::optional<sweep::SweepReport> sweep_report;
  for (const auto& d : dirs)
    if (fs::exists(d / "sweep.json")) sweep_report = sweep::read_results(d);
  const RunRecord* final_run = data.runs.empty() ? nullptr : &data.runs.back();
  if (sweep_report && sweep_report->pick) {
    const auto& ids = sweep_report->summaries[sweep_report->pick->index].trials;
    for (const auto& r : data.runs)
      if (r.name == ids.front()) final_run = &r;
  }
  double total_kwh = 0, total_g = 0, total_s = 0, total_flops = 0, cpu = 0, gpu = 0, ram = 0;
  for (const auto& r : data.runs) {
    total_kwh += r.cpu_kwh + r.gpu_kwh + r.ram_kwh;
    cpu += r.cpu_kwh;
    gpu += r.gpu_kwh;
    ram += r.ram_kwh;
    total_g += r.gco2;
    total_s += r.train_seconds;
    total_flops += r.train_flops;
  }
  std::string md = "# Compute appendix\n\nGenerated by Verdant " + std::string(kVersion) +
                   " from " + data.source +
                   ". It states the computational resources used to train, as EU AI "
                   "Act Annex XI section 1(2)(d)-(e) asks: hardware, training time, FLOPs and "
                   "known or estimated energy.\n\n";
  auto block = [&](const std::string& title, const RunRecord& r) {
    md += "## " + title + "\n\n| item | value |\n| --- | --- |\n";
    md += "| hardware | " + (r.hardware.empty() ? "not recorded" : r.hardware) + " |\n";
    md += "| training time | " + format_number("%.4f", r.train_seconds / 3600) + " h (" +
          format_number("%.1f", r.train_seconds) + " s) |\n";
    md += "| location and grid intensity | " + (r.location.empty() ? "" : r.location + "; ") +
          r.carbon + " |\n";
    md += "| PUE | " + r.pue + " |\n";
    md += "| energy, CPU | " + format_number("%.6f", r.cpu_kwh) + " kWh (" + r.cpu_source + ") |\n";
    md += "| energy, GPU | " + format_number("%.6f", r.gpu_kwh) + " kWh (" + r.gpu_source + ") |\n";
    md += "| energy, RAM | " + format_number("%.6f", r.ram_kwh) + " kWh (" + r.ram_source + ") |\n";
    md += "| emissions | " + format_number("%.3f", r.gco2) + " gCO2eq |\n";
    md += "| training FLOPs | " + format_number("%.3e", r.train_flops) +
          (r.train_flops > 0 ? " (3 x forward FLOPs x samples seen)"
                             : " (not recorded for this run)") +
          " |\n\n";
  };
  if (final_run)
    block(sweep_report ? "The final model: " + final_run->name : "The run: " + final_run->name,
          *final_run);
  if (data.runs.size() > 1) {
    md += "## The whole search (" + std::to_string(data.runs.size()) +
          " runs)\n\nThe cost of "
          "the search belongs in the disclosure, not only the final model's.\n\n| item | value "
          "|\n| --- | --- |\n";
    md += "| training time | " + format_number("%.4f", total_s / 3600) + " h |\n";
    md += "| energy | " + format_number("%.6f", total_kwh) + " kWh (CPU " +
          format_number("%.6f", cpu) + ", GPU " + format_number("%.6f", gpu) + ", RAM " +
          format_number("%.6f", ram) + ") |\n";
    md += "| emissions | " + format_number("%.3f", total_g) + " gCO2eq |\n";
    md += "| training FLOPs | " + format_number("%.3e", total_flops) + " |\n\n";
  }
  // Hugging Face's model card metadata (emissions in grams).
  const RunRecord empty;
  const RunRecord& f = final_run ? *final_run : empty;
  md += "## Model card metadata (Hugging Face `co2_eq_emissions`)\n\n```yaml\nco2_eq_emissions:\n";
  md += "  emissions: " + format_number("%.4f", data.runs.size() > 1 ? total_g : f.gco2) + "\n";
  md += "  source: \"Verdant " + std::string(kVersion) + " (" +
        (f.cpu_source.empty() ? "energy not tracked" : f.cpu_source) + ")\"\n";
  md += "  training_type: \"" +
        std::string(data.runs.size() > 1
                        ? "search of " + std::to_string(data.runs.size()) + " candidates"
                        : "pre-training") +
        "\"\n";
  md += "  geographical_location: \"" + (f.location.empty() ? f.carbon : f.location) + "\"\n";
  md += "  hardware_used: \"" + (f.hardware.empty() ? std::string("not recorded") : f.hardware) +
        "\"\n```\n";
  return md;
}

}  // namespace verdant::report
