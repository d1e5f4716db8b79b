// The CPU power models and the rules that choose one (see power_model.hpp): Cloud Carbon
// Footprint's vCPU coefficients on VMs, a TDP load curve on bare metal, CodeCarbon 3's
// default for unknown CPUs, and fits made by `verdant calibrate`.
#include "verdant/energy/power_model.hpp"
#include "verdant/core/text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "file_util.hpp"
#include "intensity_text.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/energy/data_paths.hpp"
#include "verdant/energy/meter.hpp"

namespace verdant::energy {

namespace fs = std::filesystem;

namespace {

// Short figures for labels, three significant digits: 0.4454 -> "0.445", 1.5 -> "1.5",
// 1234.5 -> "1235".
std::string watts_text(double w) {
  return format_number(w >= 100 ? "%.0f" : "%.3g", w);
}

// CCF spells one row "Sky Lake" (AWS) and "Skylake" (Azure, GCP).
std::string row_key(std::string_view name) {
  std::string k;
  for (char c : name)
    if (c != ' ') k += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return k;
}

std::string join(const std::vector<std::string>& items, const char* sep = ", ") {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string plural(int n, const std::string& unit) {
  return std::to_string(n) + " " + unit + (n == 1 ? "" : "s");
}

// "AMD family 25 model 1", "Intel family 6 model 85 stepping 7", "ARM part 0xd0c".
std::string cpu_identity(const CpuInfo& cpu) {
  if (cpu.vendor.rfind("0x", 0) == 0) {
    char part[16];
    std::snprintf(part, sizeof part, "0x%x", cpu.model < 0 ? 0 : cpu.model);
    return "ARM implementer " + cpu.vendor + " part " + part;
  }
  std::string vendor = cpu.vendor == "AuthenticAMD"   ? "AMD"
                       : cpu.vendor == "GenuineIntel" ? "Intel"
                       : cpu.vendor.empty()           ? "unknown vendor"
                                                      : cpu.vendor;
  std::string s =
      vendor + " family " + std::to_string(cpu.family) + " model " + std::to_string(cpu.model);
  if (cpu.vendor == "GenuineIntel" && cpu.stepping >= 0)
    s += " stepping " + std::to_string(cpu.stepping);
  return s;
}

Microarchitecture arch(std::string name, std::vector<std::string> rows, bool exact) {
  return {std::move(name), std::move(rows), exact};
}

Microarchitecture amd(int family, int model) {
  const std::vector<std::string> zen3_rows = {"EPYC 3rd Gen", "EPYC 2nd Gen"};
  if (family == 0x17) {
    if (model < 0x08) return arch("Zen", {"EPYC 1st Gen", "EPYC 2nd Gen"}, true);
    if (model < 0x30) return arch("Zen+", {"EPYC 1st Gen", "EPYC 2nd Gen"}, false);
    return arch("Zen 2", {"EPYC 2nd Gen", "EPYC 3rd Gen", "EPYC 1st Gen"}, true);
  }
  if (family == 0x19) {
    // Zen 3: Milan 0x01, Vermeer 0x21, Cezanne 0x50, Rembrandt 0x44. Zen 4: Genoa 0x11,
    // Raphael 0x61, Phoenix 0x74/0x78, Bergamo 0xa0.
    if (model < 0x10 || (model >= 0x20 && model < 0x60)) return arch("Zen 3", zen3_rows, true);
    return arch("Zen 4", zen3_rows, false);
  }
  if (family == 0x1a) return arch("Zen 5", zen3_rows, false);
  return {};
}

Microarchitecture intel(int family, int model, int stepping) {
  if (family != 6) return {};
  const std::vector<std::string> server_after_cascade = {"Cascade Lake", "Skylake"};
  const std::vector<std::string> client_after_coffee = {"Coffee Lake", "Skylake"};
  switch (model) {
    case 0x2a:
    case 0x2d:
      return arch("Sandy Bridge", {"Sandy Bridge", "Ivy Bridge"}, true);
    case 0x3a:
    case 0x3e:
      return arch("Ivy Bridge", {"Ivy Bridge", "Sandy Bridge", "Haswell"}, true);
    case 0x3c:
    case 0x3f:
    case 0x45:
    case 0x46:
      return arch("Haswell", {"Haswell", "Broadwell", "Ivy Bridge"}, true);
    case 0x3d:
    case 0x47:
    case 0x4f:
    case 0x56:
      return arch("Broadwell", {"Broadwell", "Haswell", "Skylake"}, true);
    case 0x4e:
    case 0x5e:
      return arch("Skylake", {"Skylake", "Cascade Lake", "Broadwell"}, true);
    case 0x55:  // Skylake-SP, Cascade Lake and Cooper Lake share the model; steppings differ
      if (stepping >= 0 && stepping <= 4)
        return arch("Skylake", {"Skylake", "Cascade Lake", "Broadwell"}, true);
      if (stepping >= 10) return arch("Cooper Lake", server_after_cascade, false);
      return arch("Cascade Lake", server_after_cascade, true);
    case 0x8e:
    case 0x9e:
      if (stepping >= 0 && stepping <= 9) return arch("Kaby Lake", client_after_coffee, false);
      return arch("Coffee Lake", client_after_coffee, true);
    case 0xa5:
    case 0xa6:
      return arch("Comet Lake", client_after_coffee, false);
    case 0x6a:
    case 0x6c:
      return arch("Ice Lake", server_after_cascade, false);
    case 0x8f:
      return arch("Sapphire Rapids", server_after_cascade, false);
    case 0xcf:
      return arch("Emerald Rapids", server_after_cascade, false);
    case 0xad:
    case 0xae:
      return arch("Granite Rapids", server_after_cascade, false);
    case 0xaf:
      return arch("Sierra Forest", server_after_cascade, false);
    case 0x7d:
    case 0x7e:
      return arch("Ice Lake (client)", client_after_coffee, false);
    case 0x8c:
    case 0x8d:
      return arch("Tiger Lake", client_after_coffee, false);
    case 0xa7:
      return arch("Rocket Lake", client_after_coffee, false);
    case 0x97:
    case 0x9a:
      return arch("Alder Lake", client_after_coffee, false);
    case 0xb7:
    case 0xba:
    case 0xbf:
      return arch("Raptor Lake", client_after_coffee, false);
    case 0xaa:
    case 0xac:
      return arch("Meteor Lake", client_after_coffee, false);
    default:
      return {};
  }
}

Microarchitecture arm(int part) {
  switch (part) {
    case 0xd08:  // Cortex-A72
      return arch("Graviton", {"Graviton", "Graviton2"}, true);
    case 0xd0c:  // Neoverse N1
      return arch("Graviton2", {"Graviton2", "Graviton"}, true);
    case 0xd40:  // Neoverse V1
      return arch("Graviton3", {"Graviton2", "Graviton"}, false);
    case 0xd4f:  // Neoverse V2
      return arch("Graviton4", {"Graviton2", "Graviton"}, false);
    default:
      return {};
  }
}

double parse_number(std::string_view text, const fs::path& file, int line, const char* what) {
  const auto v = detail::parse_double(text);
  if (!v || *v < 0)
    throw Error(file.string() + ":" + std::to_string(line) + ": " + what +
                " must be a number >= 0, got '" + std::string(detail::trim(text)) + "'");
  return *v;
}

// The rows of `table` for the first of `wanted` that has any, and which one that was.
std::vector<CcfCoefficient> rows_for(const std::vector<CcfCoefficient>& table,
                                     const std::vector<std::string>& wanted, std::string* found) {
  for (const auto& w : wanted) {
    std::vector<CcfCoefficient> rows;
    for (const auto& c : table)
      if (row_key(c.architecture) == row_key(w)) rows.push_back(c);
    if (!rows.empty()) {
      *found = rows.front().architecture;
      return rows;
    }
  }
  return {};
}

double mean_of(const std::vector<CcfCoefficient>& rows, double CcfCoefficient::*field) {
  double sum = 0;
  for (const auto& r : rows) sum += r.*field;
  return rows.empty() ? 0 : sum / static_cast<double>(rows.size());
}

std::vector<std::string> providers_of(const std::vector<CcfCoefficient>& rows) {
  std::set<std::string> p;
  for (const auto& r : rows) p.insert(r.provider);
  return {p.begin(), p.end()};
}

std::optional<double> tdp_from_environment() {
  const char* env = std::getenv("VERDANT_CPU_TDP_W");
  if (!env || !*env) return std::nullopt;
  char* end = nullptr;
  const double w = std::strtod(env, &end);
  if (*end != '\0' || !(w > 0) || !std::isfinite(w))
    throw Error(std::string("VERDANT_CPU_TDP_W: expected watts > 0, got '") + env + "'");
  return w;
}

// Idle share of full-load power for the TDP curve: Min / Max of the microarchitecture's rows,
// or the mean ratio over every row.
double idle_share(const std::vector<CcfCoefficient>& table, const Microarchitecture& a,
                  std::string* from) {
  std::string found;
  auto rows = rows_for(table, a.rows, &found);
  if (!rows.empty()) {
    *from = "CCF " + found + " Min/Max";
    return mean_of(rows, &CcfCoefficient::min_watts) / mean_of(rows, &CcfCoefficient::max_watts);
  }
  double sum = 0;
  for (const auto& r : table) sum += r.min_watts / r.max_watts;
  *from = "mean Min/Max of the " + std::to_string(table.size()) + " CCF rows";
  return sum / static_cast<double>(table.size());
}

std::string linear_formula(int cpus, const std::string& unit, double idle, double full) {
  return plural(cpus, unit) + " x (" + watts_text(idle) + " + " + watts_text(full - idle) + " u) W";
}

}  // namespace

std::vector<CcfCoefficient> load_ccf_coefficients(const fs::path& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string n = it->path().filename().string();
    if (n.rfind("coefficients-", 0) == 0 && n.size() > 21 &&
        n.compare(n.size() - 8, 8, "-use.csv") == 0)
      files.push_back(it->path());
  }
  if (ec) throw Error(dir.string() + ": " + ec.message());
  if (files.empty()) throw Error(dir.string() + ": no coefficients-<provider>-use.csv files");
  std::sort(files.begin(), files.end());
  std::vector<CcfCoefficient> out;
  for (const auto& file : files) {
    const std::string n = file.filename().string();
    const std::string provider = n.substr(13, n.size() - 13 - 8);
    const std::string text = detail::read_small_file_or_throw(file);
    detail::LineReader lines(text);
    std::string_view line;
    std::vector<std::string> f;
    while (lines.next(line)) {
      const int line_no = static_cast<int>(lines.number());
      if (line_no == 1) {
        if (line.find("Architecture,Min Watts,Max Watts") == std::string_view::npos)
          throw Error(file.string() +
                      ":1: expected the header ',Architecture,Min Watts,Max Watts,GB/Chip'");
        continue;
      }
      if (detail::trim(line).empty()) continue;
      if (!detail::split_csv(line, f) || f.size() < 4 || detail::trim(f[1]).empty())
        throw Error(file.string() + ":" + std::to_string(line_no) +
                    ": expected 'index,Architecture,Min Watts,Max Watts,GB/Chip'");
      CcfCoefficient c;
      c.provider = provider;
      c.architecture = std::string(detail::trim(f[1]));
      c.min_watts = parse_number(f[2], file, line_no, "Min Watts");
      c.max_watts = parse_number(f[3], file, line_no, "Max Watts");
      if (!(c.max_watts > 0) || c.min_watts > c.max_watts)
        throw Error(file.string() + ":" + std::to_string(line_no) +
                    ": Min Watts must not exceed Max Watts, and Max Watts must be positive");
      out.push_back(std::move(c));
    }
  }
  return out;
}

Microarchitecture identify_microarchitecture(const CpuInfo& cpu) {
  if (cpu.vendor == "AuthenticAMD") return amd(cpu.family, cpu.model);
  if (cpu.vendor == "GenuineIntel") return intel(cpu.family, cpu.model, cpu.stepping);
  if (cpu.vendor == "0x41") return arm(cpu.model);
  return {};
}

std::string cloud_provider_of(std::string_view cloud_region) {
  std::string p(cloud_region.substr(0, cloud_region.find(':')));
  for (char& c : p) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return p;
}

double CpuPowerModel::watts(double utilisation) const {
  const double u = std::clamp(std::isfinite(utilisation) ? utilisation : 0.0, 0.0, 1.0);
  return cpus * (idle_watts + (full_watts - idle_watts) * std::pow(u, exponent));
}

std::string CpuPowerModel::describe() const {
  return kind + ", " + inputs + ", range " + watts_text(range_low) + "-" + watts_text(range_high) +
         " W per " + unit;
}

namespace {

// What the builders below share: the machine as cpuinfo describes it.
struct Machine {
  CpuInfo cpu;
  int cpus = 1;
  std::string model_name;  // "unknown CPU" when cpuinfo has none
  Microarchitecture arch;
  std::string identity;  // "AMD family 25 model 1 (Zen 3)"
};

CpuPowerModel fitted_model(const Machine& m, const fs::path& file) {
  const PowerModelFit fit = validate_power_model(file);
  CpuPowerModel out;
  out.kind = "calibrated model";
  out.cpus = m.cpus;
  out.idle_watts = out.range_low = fit.idle_watts;
  out.full_watts = out.range_high = fit.full_watts;
  out.inputs = "fitted with " + fit.counter + " on '" + fit.cpu_model + "' (" +
               plural(fit.cpus, "CPU") + ", " + fit.fitted_at + ", largest residual " +
               format_number("%.1f%%", fit.max_residual * 100) + ") from " + file.string() + ": " +
               linear_formula(m.cpus, "CPU", out.idle_watts, out.full_watts);
  if (fit.cpu_model != m.cpu.model_name)
    out.warnings.push_back("the power model " + file.string() + " was fitted on '" + fit.cpu_model +
                           "', this machine has '" + m.model_name + "'");
  return out;
}

// Per vCPU Min + u x (Max - Min), Cloud Carbon Footprint's compute estimate.
CpuPowerModel vcpu_model(const Machine& m, const std::vector<CcfCoefficient>& table,
                         const std::string& provider) {
  std::vector<CcfCoefficient> pool;
  for (const auto& c : table)
    if (provider.empty() || c.provider == provider) pool.push_back(c);
  const bool provider_known = !pool.empty() && !provider.empty();
  if (pool.empty()) pool = table;  // a provider CCF does not cover: all rows
  std::string found;
  std::vector<CcfCoefficient> rows = rows_for(pool, m.arch.rows, &found);
  const std::string where = "CCF " + join(providers_of(rows.empty() ? pool : rows));
  std::string what;
  if (!rows.empty()) {
    const bool own = m.arch.exact && row_key(found) == row_key(m.arch.rows.front());
    what = found + " coefficients (" + where + ")" + (own ? " for " : " standing in for ") +
           m.identity;
  } else {
    rows = pool;
    const std::string whose = provider_known ? provider + "'s" : "all";
    what = "the mean of " + whose + " " + std::to_string(rows.size()) + " CCF rows (" + where +
           ") standing in for " + (m.arch.name.empty() ? "an unrecognised CPU, " : "") + m.identity;
  }
  CpuPowerModel out;
  out.kind = "vCPU model";
  out.unit = "vCPU";
  out.cpus = m.cpus;
  out.idle_watts = out.range_low = mean_of(rows, &CcfCoefficient::min_watts);
  out.full_watts = out.range_high = mean_of(rows, &CcfCoefficient::max_watts);
  for (const auto& r : rows) {
    out.range_low = std::min(out.range_low, r.min_watts);
    out.range_high = std::max(out.range_high, r.max_watts);
  }
  const CpuInfo& c = m.cpu;
  const std::string why =
      c.hypervisor ? "VM: hypervisor flag"
                   : "VM: " + std::to_string(c.logical_cpus) + " of the sockets' " +
                         std::to_string(c.threads_per_socket * c.sockets) + " CPUs visible";
  out.inputs =
      what + ", " + why + ": " + linear_formula(m.cpus, "vCPU", out.idle_watts, out.full_watts);
  return out;
}

// sockets x TDP x (r + (1 - r) u), the idle share r from the microarchitecture's CCF rows.
CpuPowerModel tdp_curve_model(const Machine& m, const std::vector<CcfCoefficient>& table,
                              double tdp, const std::string& tdp_label) {
  std::string from;
  const double r = idle_share(table, m.arch, &from);
  const double full = tdp * m.cpu.sockets;
  CpuPowerModel out;
  out.kind = "TDP load curve";
  out.cpus = m.cpus;
  out.idle_watts = out.range_low = full * r / m.cpus;
  out.full_watts = out.range_high = full / m.cpus;
  out.inputs = plural(m.cpu.sockets, "socket") + " x " + tdp_label + " x (" +
               format_number("%.2f", r) + " + " + format_number("%.2f", 1 - r) +
               " u), linear from idle (share from " + from + ") to TDP, over " +
               plural(m.cpus, "CPU");
  return out;
}

// CodeCarbon 3: TDP = threads x 4 W, power = TDP x (0.1 + 0.9 u^3).
CpuPowerModel codecarbon3_model(const Machine& m) {
  CpuPowerModel out;
  out.kind = "CodeCarbon 3 default";
  out.unit = "thread";
  out.cpus = m.cpus;
  out.full_watts = out.range_high = kUnknownCpuWattsPerThread;
  out.idle_watts = out.range_low = 0.1 * kUnknownCpuWattsPerThread;
  out.exponent = 3;
  out.inputs = "'" + m.model_name + "' is not in cpu_tdp.csv: " + plural(m.cpus, "thread") + " x " +
               watts_text(kUnknownCpuWattsPerThread) + " W x (0.1 + 0.9 u^3)";
  return out;
}

}  // namespace

CpuPowerModel cpu_power_model(const PowerModelOptions& o) {
  Machine m;
  m.cpu = read_cpuinfo(o.proc_root);
  m.cpus = std::max(1, m.cpu.logical_cpus);
  m.model_name = m.cpu.model_name.empty() ? "unknown CPU" : m.cpu.model_name;
  m.arch = identify_microarchitecture(m.cpu);
  m.identity = cpu_identity(m.cpu) + (m.arch.name.empty() ? "" : " (" + m.arch.name + ")");

  if (!o.power_model.empty()) return fitted_model(m, o.power_model);

  std::optional<double> tdp = o.cpu_tdp_w;
  if (tdp && !(*tdp > 0 && std::isfinite(*tdp)))
    throw SettingError(
        "cpu_tdp", "cpu_tdp must be a positive number of watts, got " + format_number("%g", *tdp));
  const bool given = tdp.has_value();
  if (!tdp) tdp = tdp_from_environment();

  const auto table =
      load_ccf_coefficients(o.ccf_dir.empty() ? data_dir() / "hardware" / "ccf" : o.ccf_dir);
  const bool vm =
      m.cpu.hypervisor || (m.cpu.threads_per_socket > 0 &&
                           m.cpu.logical_cpus < m.cpu.threads_per_socket * m.cpu.sockets);
  if (tdp)
    return tdp_curve_model(m, table, *tdp,
                           watts_text(*tdp) + " W TDP (" + (given ? "given" : "VERDANT_CPU_TDP_W") +
                               ") of '" + m.model_name + "'");
  if (vm) return vcpu_model(m, table, o.cloud_provider);
  const fs::path csv = o.tdp_csv.empty() ? data_dir() / "hardware" / "cpu_tdp.csv" : o.tdp_csv;
  if (const TdpMatch match = match_cpu_tdp(m.cpu.model_name, csv); match.known)
    return tdp_curve_model(
        m, table, match.watts,
        watts_text(match.watts) + " W TDP of '" + match.table_name + "' (cpu_tdp.csv)");
  return codecarbon3_model(m);
}

// ---- power-model files ---------------------------------------------------------------

std::string power_model_json(const PowerModelFit& fit) {
  nlohmann::json j;
  j["format"] = "verdant power model";
  j["version"] = 1;
  j["cpu_model"] = fit.cpu_model;
  j["cpus"] = fit.cpus;
  j["idle_watts_per_cpu"] = fit.idle_watts;
  j["full_watts_per_cpu"] = fit.full_watts;
  j["max_residual"] = fit.max_residual;
  j["counter"] = fit.counter;
  j["fitted_at"] = fit.fitted_at;
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : fit.points)
    points.push_back({{"load", p.load},
                      {"utilisation", p.utilisation},
                      {"seconds", p.seconds},
                      {"watts", p.watts}});
  j["points"] = points;
  return j.dump(2) + "\n";
}

void save_power_model(const fs::path& path, const PowerModelFit& fit) {
  write_file_atomic(path, power_model_json(fit));
}

PowerModelFit validate_power_model(const fs::path& path) {
  try {
    return load_power_model(path);
  } catch (const SettingError&) {
    throw;
  } catch (const Error& e) {
    throw SettingError("power_model", std::string("power_model ") + e.what());
  }
}

PowerModelFit load_power_model(const fs::path& path) {
  std::string why;
  auto text = detail::read_small_file(path, &why);
  if (!text) throw Error(why);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(*text);
  } catch (const nlohmann::json::exception&) {
    throw Error(path.string() + ": not a power model (not JSON); `verdant calibrate` writes one");
  }
  if (!j.is_object() || j.value("format", std::string()) != "verdant power model")
    throw Error(path.string() +
                ": not a power model (no \"format\": \"verdant power model\"); `verdant "
                "calibrate` writes one");
  auto number = [&](const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number() || !std::isfinite(it->get<double>()))
      throw Error(path.string() + ": \"" + key + "\" must be a number");
    return it->get<double>();
  };
  auto text_of = [&](const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string())
      throw Error(path.string() + ": \"" + key + "\" must be a string");
    return it->get<std::string>();
  };
  PowerModelFit fit;
  fit.origin = path.string();
  fit.cpu_model = text_of("cpu_model");
  fit.counter = text_of("counter");
  fit.fitted_at = text_of("fitted_at");
  const double cpus = number("cpus");
  if (!(cpus >= 1 && cpus <= 1 << 20 && cpus == std::floor(cpus)))
    throw Error(path.string() + ": \"cpus\" must be a whole number >= 1");
  fit.cpus = static_cast<int>(cpus);
  fit.idle_watts = number("idle_watts_per_cpu");
  fit.full_watts = number("full_watts_per_cpu");
  fit.max_residual = number("max_residual");
  if (!(fit.idle_watts >= 0 && fit.idle_watts <= fit.full_watts && fit.full_watts > 0))
    throw Error(path.string() +
                ": needs 0 <= \"idle_watts_per_cpu\" <= \"full_watts_per_cpu\", and a positive "
                "\"full_watts_per_cpu\"");
  // The points are a record of the fit; the model does not need them.
  auto field = [](const nlohmann::json& p, const char* key) {
    auto it = p.find(key);
    return it != p.end() && it->is_number() ? it->get<double>() : 0.0;
  };
  if (auto it = j.find("points"); it != j.end() && it->is_array())
    for (const auto& p : *it)
      if (p.is_object())
        fit.points.push_back(
            {field(p, "load"), field(p, "utilisation"), field(p, "seconds"), field(p, "watts")});
  return fit;
}

}  // namespace verdant::energy
