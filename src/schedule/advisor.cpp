// Region advisor over energy's cloud-region table.
#include "verdant/schedule/advisor.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>
#include <sstream>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"

namespace verdant::schedule {

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
std::string trim(const std::string& s) {
  auto a = s.find_first_not_of(" \t\r");
  if (a == std::string::npos) return "";
  auto b = s.find_last_not_of(" \t\r");
  return s.substr(a, b - a + 1);
}
}  // namespace

std::vector<RegionAdvice> advise_regions(const AdvisorOptions& options) {
  if (!(options.energy_kwh >= 0) || !std::isfinite(options.energy_kwh))
    throw SettingError("energy_kwh", "energy_kwh must be a number >= 0");
  if (options.default_pue) energy::validate_pue(*options.default_pue);
  const auto& regions = energy::cloud_regions();
  const std::string provider = lower(options.provider);
  if (!provider.empty()) {
    std::set<std::string> providers;
    for (const auto& r : regions) providers.insert(r.provider);
    if (!providers.count(provider)) {
      std::vector<std::string> names(providers.begin(), providers.end());
      auto close = energy::closest_names(provider, names, 3);
      std::string list;
      for (const auto& n : close) list += (list.empty() ? "" : ", ") + n;
      throw Error("unknown cloud provider '" + options.provider + "'; closest: " + list);
    }
  }
  std::vector<RegionAdvice> out;
  for (const auto& r : regions) {
    if (!provider.empty() && r.provider != provider) continue;
    RegionAdvice a;
    a.key = r.key();
    a.location = r.location;
    a.intensity = r.gco2_per_kwh;
    a.pue_known = r.pue.has_value();
    a.pue = r.pue.value_or(options.default_pue.value_or(energy::kDefaultPue));
    a.grams = options.energy_kwh * a.pue * a.intensity;
    if (auto it = options.region_prices.find(lower(a.key)); it != options.region_prices.end())
      a.price_per_kwh = it->second;
    else if (auto p = options.region_prices.find(r.provider); p != options.region_prices.end())
      a.price_per_kwh = p->second;
    else if (options.price_per_kwh)
      a.price_per_kwh = *options.price_per_kwh;
    if (a.price_per_kwh) a.cost = options.energy_kwh * a.pue * *a.price_per_kwh;
    out.push_back(std::move(a));
  }
  std::stable_sort(out.begin(), out.end(), [](const RegionAdvice& x, const RegionAdvice& y) {
    if (x.grams != y.grams) return x.grams < y.grams;
    double cx = x.cost.value_or(INFINITY), cy = y.cost.value_or(INFINITY);
    if (cx != cy) return cx < cy;
    return x.key < y.key;
  });
  if (options.top > 0 && out.size() > options.top) out.resize(options.top);
  return out;
}

std::map<std::string, double> load_region_prices(const std::filesystem::path& path) {
  std::istringstream in(read_file_text(path));
  std::map<std::string, double> prices;
  std::string line;
  std::size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    auto comma = line.find(',');
    auto where = path.string() + ":" + std::to_string(number) + ": ";
    if (comma == std::string::npos) throw Error(where + "expected 'region,usd_per_kwh'");
    std::string key = lower(trim(line.substr(0, comma)));
    std::string value = trim(line.substr(comma + 1));
    char* end = nullptr;
    double price = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size()) {
      if (number == 1 && prices.empty()) continue;  // header line
      throw Error(where + "'" + value + "' is not a price");
    }
    if (!(price >= 0) || !std::isfinite(price)) throw Error(where + "price must be >= 0");
    if (key.empty()) throw Error(where + "empty region");
    prices[key] = price;
  }
  return prices;
}

}  // namespace verdant::schedule
