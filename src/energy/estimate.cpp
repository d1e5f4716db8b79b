// The estimating meter for machines with no readable counter: CPU power from the chosen power
// model (power_model.hpp) at the machine's measured utilisation, plus memory power per GB in
// use; and the TDP table's matcher.
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <string_view>

#include "file_util.hpp"
#include "verdant/core/error.hpp"
#include "verdant/energy/meter.hpp"
#include "verdant/energy/procstat.hpp"

namespace verdant::energy {

namespace fs = std::filesystem;

namespace {

// Lower-case words of a CPU name without the decorations that differ between
// /proc/cpuinfo and the table ("Intel(R) Xeon(R) CPU E5-2620 v3 @ 2.40GHz").
std::vector<std::string> cpu_words(std::string s) {
  for (const char* junk : {"(R)", "(r)", "(TM)", "(tm)", "(Tm)"})
    for (auto p = s.find(junk); p != std::string::npos; p = s.find(junk))
      s.erase(p, std::string_view(junk).size());
  if (auto at = s.find('@'); at != std::string::npos) s.erase(at);
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (c == ',' || c == '(' || c == ')' || c == '"') c = ' ';
  }
  std::istringstream in(s);
  std::vector<std::string> words;
  std::string w;
  while (in >> w) {
    if (w == "cpu" || w == "processor") continue;
    if (w.size() > 5 && w.compare(w.size() - 5, 5, "-core") == 0) continue;  // "16-core"
    words.push_back(w);
  }
  return words;
}

bool has_digit(const std::string& w) {
  for (char c : w)
    if (std::isdigit(static_cast<unsigned char>(c))) return true;
  return false;
}

// Splits one CSV line into two fields, honouring double quotes around the first.
bool split_name_tdp(const std::string& line, std::string* name, std::string* tdp) {
  if (!line.empty() && line[0] == '"') {
    auto close = line.find('"', 1);
    if (close == std::string::npos || close + 1 >= line.size() || line[close + 1] != ',')
      return false;
    *name = line.substr(1, close - 1);
    *tdp = line.substr(close + 2);
    return true;
  }
  auto comma = line.rfind(',');
  if (comma == std::string::npos) return false;
  *name = line.substr(0, comma);
  *tdp = line.substr(comma + 1);
  return true;
}

class EstimateMeter final : public Meter {
 public:
  EstimateMeter(fs::path proc_root, CpuPowerModel cpu, double ram_watts_per_gb, std::string model)
      : proc_root_(std::move(proc_root)),
        cpu_(std::move(cpu)),
        ram_watts_per_gb_(ram_watts_per_gb),
        cpu_label_("estimated (" + cpu_.describe() + ")"),
        model_(std::move(model)),
        stat_(proc_root_ / "stat"),
        last_(read_stat()) {
    char ram[160];
    std::snprintf(ram, sizeof ram,
                  "estimated (RAM %g W/GB x memory in use, Cloud Carbon Footprint's coefficient)",
                  ram_watts_per_gb_);
    ram_label_ = ram;
    label_ = cpu_label_ + "; " + ram_label_;
  }

  Joules read() override {
    MachineCpuTimes now = read_stat();
    const double d_busy = now.busy_s - last_.busy_s;
    const double d_total = now.total_s - last_.total_s;
    if (d_total > 0 && d_busy >= 0) {
      // Elapsed time from the kernel's own accounting: total CPU time / number of CPUs.
      const double elapsed = d_total / now.cpus;
      const double utilisation = std::min(1.0, d_busy / d_total);
      total_[Domain::cpu] += cpu_.watts(utilisation) * elapsed;
      const double used_gb = read_memory_usage(proc_root_).used_bytes / (1024.0 * 1024.0 * 1024.0);
      total_[Domain::dram] += ram_watts_per_gb_ * used_gb * elapsed;
    }
    last_ = now;
    return total_;
  }
  std::string name() const override { return "estimate"; }
  bool measured() const override { return false; }
  std::vector<Domain> domains() const override { return {Domain::cpu, Domain::dram}; }
  std::string source() const override { return label_; }
  std::string source(Domain d) const override {
    return d == Domain::dram ? ram_label_ : cpu_label_;
  }
  std::vector<std::string> device_names() const override { return {model_}; }
  const MachineCpuTimes* machine_cpu(const fs::path& proc_root) const override {
    return proc_root == proc_root_ ? &last_ : nullptr;
  }
  std::vector<std::string> warnings() const override { return cpu_.warnings; }

 private:
  fs::path proc_root_;
  CpuPowerModel cpu_;
  double ram_watts_per_gb_;
  std::string label_, cpu_label_, ram_label_;
  std::string model_;
  detail::RereadFile stat_;
  MachineCpuTimes last_;
  Joules total_;

  MachineCpuTimes read_stat() {
    std::string why;
    auto text = stat_.read(&why);
    if (!text) throw Error(why);
    return parse_machine_cpu(*text, stat_.path().string());
  }
};

}  // namespace

TdpMatch match_cpu_tdp(const std::string& model_name, const fs::path& tdp_csv) {
  std::string text = detail::read_small_file_or_throw(tdp_csv);
  const auto model = cpu_words(model_name);
  const std::set<std::string> model_set(model.begin(), model.end());
  TdpMatch best;
  std::size_t best_words = 0;
  std::istringstream lines(text);
  std::string line;
  int line_no = 0;
  while (std::getline(lines, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1) {
      if (line.rfind("Name,TDP", 0) != 0)
        throw Error(tdp_csv.string() + ":1: expected the header 'Name,TDP'");
      continue;
    }
    if (detail::trim(line).empty()) continue;
    std::string name, tdp_text;
    if (!split_name_tdp(line, &name, &tdp_text))
      throw Error(tdp_csv.string() + ":" + std::to_string(line_no) + ": expected 'Name,TDP'");
    tdp_text = detail::trim(tdp_text);
    char* end = nullptr;
    errno = 0;
    double watts = std::strtod(tdp_text.c_str(), &end);
    if (tdp_text.empty())
      throw Error(tdp_csv.string() + ":" + std::to_string(line_no) + ": empty TDP");
    if (*end != '\0' || errno != 0 || !(watts > 0)) {
      // The bundled table has a few unusable values (e.g. "27.29.5" for a range): such a
      // row cannot be matched, and the count is reported, but the table stays usable.
      ++best.skipped_rows;
      continue;
    }
    auto words = cpu_words(name);
    if (words.size() <= best_words) continue;
    bool numbered = false, all_in = true;
    for (auto& w : words) {
      numbered = numbered || has_digit(w);
      all_in = all_in && model_set.count(w);
    }
    if (!numbered || !all_in) continue;  // "AMD EPYC" alone must not pick one EPYC's TDP
    best.watts = watts;
    best.known = true;
    best.table_name = name;
    best_words = words.size();
  }
  return best;
}

std::unique_ptr<Meter> make_estimate_meter(const EstimateOptions& options) {
  if (!(options.ram_watts_per_gb >= 0) || !std::isfinite(options.ram_watts_per_gb))
    throw SettingError("ram_watts_per_gb", "ram_watts_per_gb must be a finite number >= 0");
  CpuInfo cpu = read_cpuinfo(options.proc_root);
  std::string model = cpu.model_name.empty() ? "unknown CPU" : cpu.model_name;
  return std::make_unique<EstimateMeter>(options.proc_root, cpu_power_model(options),
                                         options.ram_watts_per_gb, model);
}

}  // namespace verdant::energy
