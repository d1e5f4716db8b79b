// RAPL through the Linux powercap sysfs tree. Counters are microjoules that wrap at
// max_energy_range_uj, so each read() adds the wrap-corrected delta since the last read.
#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <regex>

#include "file_util.hpp"
#include "verdant/core/error.hpp"
#include "verdant/energy/meter.hpp"

namespace verdant::energy {

namespace fs = std::filesystem;

namespace {

struct Zone {
  fs::path dir;
  Domain domain = Domain::cpu;
  double max_range_uj = 0;
  double last_uj = 0;
  double total_j = 0;
};

double read_counter(const fs::path& file) {
  std::string text = detail::read_small_file_or_throw(file);
  std::string t = detail::trim(text);
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(t.c_str(), &end);
  if (t.empty() || *end != '\0' || errno != 0 || v < 0)
    throw Error(file.string() + ": expected a non-negative integer, got '" + t + "'");
  return v;
}

class RaplMeter final : public Meter {
 public:
  explicit RaplMeter(std::vector<Zone> zones) : zones_(std::move(zones)) {
    for (auto& z : zones_) z.last_uj = read_counter(z.dir / "energy_uj");
  }

  Joules read() override {
    Joules out;
    for (auto& z : zones_) {
      double now = read_counter(z.dir / "energy_uj");
      double delta = now - z.last_uj;
      // Wrapped since the last read: the counter went max -> 0 once.
      if (delta < 0) delta += z.max_range_uj;
      z.last_uj = now;
      z.total_j += delta * 1e-6;
      out[z.domain] += z.total_j;
    }
    return out;
  }

  std::string name() const override { return "rapl"; }
  bool measured() const override { return true; }
  std::vector<Domain> domains() const override {
    std::vector<Domain> d{Domain::cpu};
    if (std::any_of(zones_.begin(), zones_.end(),
                    [](const Zone& z) { return z.domain == Domain::dram; }))
      d.push_back(Domain::dram);
    return d;
  }
  std::string source() const override {
    int packages = 0, dram = 0;
    for (auto& z : zones_) (z.domain == Domain::cpu ? packages : dram)++;
    std::string s =
        "measured (rapl: " + std::to_string(packages) + " package" + (packages == 1 ? "" : "s");
    if (dram) s += " + " + std::to_string(dram) + " dram";
    return s + ")";
  }

 private:
  std::vector<Zone> zones_;
};

}  // namespace

std::unique_ptr<Meter> make_rapl_meter(const fs::path& root) {
  // Top-level zones (intel-rapl:0) and sub-zones (intel-rapl:0:0) appear as entries of
  // /sys/class/powercap; amd-rapl is the same layout under another prefix.
  static const std::regex zone_name(R"((intel|amd)-rapl:(\d+)(:(\d+))?)");
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error(root.string() + ": no powercap tree");
  std::vector<fs::path> dirs;
  for (fs::directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec))
    if (std::regex_match(it->path().filename().string(), zone_name)) dirs.push_back(it->path());
  std::sort(dirs.begin(), dirs.end());
  if (dirs.empty()) throw Error(root.string() + ": no intel-rapl or amd-rapl zones");

  std::vector<Zone> zones;
  for (const auto& dir : dirs) {
    std::string why;
    auto label = detail::read_small_file(dir / "name", &why);
    if (!label) throw Error(why);
    std::string n = detail::trim(*label);
    Zone z;
    z.dir = dir;
    if (n.rfind("package", 0) == 0)
      z.domain = Domain::cpu;
    else if (n == "dram")
      z.domain = Domain::dram;
    else
      continue;  // core, uncore (inside the package), psys (overlaps it)
    z.max_range_uj = read_counter(dir / "max_energy_range_uj");
    zones.push_back(std::move(z));
  }
  if (std::none_of(zones.begin(), zones.end(),
                   [](const Zone& z) { return z.domain == Domain::cpu; }))
    throw Error(root.string() + ": no RAPL package zone");
  return std::make_unique<RaplMeter>(std::move(zones));  // reads every counter once
}

}  // namespace verdant::energy
