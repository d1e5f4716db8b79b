// energy::Tracker and its sinks for Python. The tracker samples on its own C++ thread, which
// never touches Python; every call that samples, joins that thread or writes a file releases
// the GIL, so a tracked Python loop keeps running while the meters are read.
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/energy/carbon.hpp"
#include "verdant/energy/data_paths.hpp"
#include "verdant/energy/meter.hpp"
#include "verdant/energy/procstat.hpp"
#include "verdant/energy/sinks.hpp"
#include "verdant/energy/tracker.hpp"

namespace verdant::python {

namespace en = verdant::energy;
using release = py::call_guard<py::gil_scoped_release>;

namespace {

struct TrackerSettings {
  double interval_s = 15;
  std::string project_name, experiment_id;
  en::LocationRequest location;
  std::optional<double> price_per_kwh;
  std::string currency = "USD";
  std::optional<std::vector<int>> gpu_ids;  // none: every GPU; empty: none
  std::optional<double> cpu_power_w;        // forces the estimate with this TDP
  std::optional<double> default_cpu_power_w;
  std::string nvml_library = "libnvidia-ml.so.1";
};

std::unique_ptr<en::Tracker> make_tracker(const TrackerSettings& s) {
  if (!(s.interval_s > 0))
    throw SettingError("measure_power_secs", "measure_power_secs must be > 0 seconds");
  if (s.location.pue) en::validate_pue(*s.location.pue);
  if (s.price_per_kwh) en::validate_price(*s.price_per_kwh);
  en::CarbonIntensity carbon = en::resolve_carbon_intensity(s.location);

  en::MeterOptions mo;
  mo.nvml_library = s.nvml_library;
  mo.use_nvml = !s.gpu_ids || !s.gpu_ids->empty();
  if (s.gpu_ids) mo.gpu_ids = *s.gpu_ids;
  if (s.cpu_power_w) {
    if (!(*s.cpu_power_w > 0))
      throw SettingError("force_cpu_power", "force_cpu_power must be > 0 W");
    mo.force_estimate = true;
    mo.estimate.cpu_tdp_w = s.cpu_power_w;
  } else if (s.default_cpu_power_w) {
    if (!(*s.default_cpu_power_w > 0))
      throw SettingError("default_cpu_power", "default_cpu_power must be > 0 W");
    // Only for a CPU the table does not know, as CodeCarbon uses it.
    const auto cpu = en::read_cpuinfo("/proc");
    if (!en::match_cpu_tdp(cpu.model_name, en::data_dir() / "hardware" / "cpu_tdp.csv").known)
      mo.estimate.cpu_tdp_w = s.default_cpu_power_w;
  }
  en::MeterSet meters = en::select_meters(mo);

  en::TrackerOptions to;
  to.interval_s = s.interval_s;
  to.project_name = s.project_name;
  to.experiment_id = s.experiment_id;
  to.price_per_kwh = s.price_per_kwh;
  to.currency = s.currency;
  to.location = s.location;
  // The Python process does its work itself: reading its own stat file (which holds the
  // children it has reaped) keeps a sample near 0.1 ms instead of a scan of /proc.
  to.scan_descendants = false;
  return std::make_unique<en::Tracker>(std::move(meters), std::move(carbon), to);
}

py::dict per_domain(const en::Joules& j) {
  py::dict d;
  for (en::Domain x : en::kAllDomains) d[en::domain_name(x)] = j[x];
  return d;
}

template <typename F>
py::dict domain_map(F&& value_of) {
  py::dict d;
  for (en::Domain x : en::kAllDomains) d[en::domain_name(x)] = value_of(x);
  return d;
}

std::vector<en::PhaseResult> phase_list(const py::iterable& phases) {
  std::vector<en::PhaseResult> out;
  for (auto p : phases) out.push_back(p.cast<en::PhaseResult>());
  return out;
}

}  // namespace

void bind_energy(py::module_& m) {
  py::class_<en::PhaseResult>(m, "Phase", "One phase (window, task or whole run) of a tracker")
      .def_readonly("name", &en::PhaseResult::name)
      .def_property_readonly("start",
                             [](const en::PhaseResult& r) { return unix_seconds(r.start); })
      .def_property_readonly("end", [](const en::PhaseResult& r) { return unix_seconds(r.end); })
      .def_readonly("duration_s", &en::PhaseResult::duration_s)
      .def_property_readonly("process_joules",
                             [](const en::PhaseResult& r) { return per_domain(r.process); })
      .def_property_readonly("machine_joules",
                             [](const en::PhaseResult& r) -> py::object {
                               if (!r.machine_reported) return py::none();
                               return per_domain(r.machine);
                             })
      .def_readonly("machine_reported", &en::PhaseResult::machine_reported)
      .def_property_readonly("gpu_joules",
                             [](const en::PhaseResult& r) {
                               py::dict d;
                               for (const auto& g : r.gpus) d[py::int_(g.index)] = g.joules;
                               return d;
                             })
      .def_property_readonly(
          "kinds",
          [](const en::PhaseResult& r) {
            return domain_map([&](en::Domain x) { return en::domain_kind(r, x); });
          })
      .def_property_readonly("sources",
                             [](const en::PhaseResult& r) {
                               return domain_map([&](en::Domain x) { return r.source[int(x)]; });
                             })
      .def_property_readonly("label", &en::measurement_label)
      .def_property_readonly("kind", &en::measurement_kind)
      .def_readonly("cpu_share", &en::PhaseResult::cpu_share)
      .def_readonly("ram_share", &en::PhaseResult::ram_share)
      .def_readonly("emissions_kg", &en::PhaseResult::emissions_kg)
      .def_readonly("machine_emissions_kg", &en::PhaseResult::machine_emissions_kg)
      .def_readonly("cost", &en::PhaseResult::cost)
      .def_readonly("carbon_note", &en::PhaseResult::carbon_note)
      .def("__repr__", [](const en::PhaseResult& r) {
        return "<verdant Phase '" + r.name + "' " + std::to_string(r.duration_s) + " s, " +
               std::to_string(r.process.total()) + " J (process)>";
      });

  py::class_<en::RunInfo>(m, "RunInfo", "Facts about the run and machine, for the sinks")
      .def_readonly("project_name", &en::RunInfo::project_name)
      .def_readonly("run_id", &en::RunInfo::run_id)
      .def_readonly("experiment_id", &en::RunInfo::experiment_id)
      .def_readonly("country_name", &en::RunInfo::country_name)
      .def_readonly("country_iso_code", &en::RunInfo::country_iso_code)
      .def_readonly("region", &en::RunInfo::region)
      .def_readonly("cloud_provider", &en::RunInfo::cloud_provider)
      .def_readonly("cloud_region", &en::RunInfo::cloud_region)
      .def_readonly("os", &en::RunInfo::os)
      .def_readonly("cpu_model", &en::RunInfo::cpu_model)
      .def_readonly("cpu_count", &en::RunInfo::cpu_count)
      .def_readonly("gpu_model", &en::RunInfo::gpu_model)
      .def_readonly("gpu_count", &en::RunInfo::gpu_count)
      .def_readonly("ram_total_gb", &en::RunInfo::ram_total_gb)
      .def_readonly("on_cloud", &en::RunInfo::on_cloud)
      .def_readonly("pue", &en::RunInfo::pue)
      .def_readonly("carbon_description", &en::RunInfo::carbon_description)
      .def_readonly("pue_description", &en::RunInfo::pue_description)
      .def_readonly("currency", &en::RunInfo::currency)
      .def_readonly("machine_leader", &en::RunInfo::machine_leader)
      .def_readonly("machine_reason", &en::RunInfo::machine_reason)
      .def_readwrite("tracking_mode", &en::RunInfo::tracking_mode)
      .def_readwrite("python_version", &en::RunInfo::python_version)
      .def("copy", [](const en::RunInfo& i) { return en::RunInfo(i); });

  py::class_<en::Tracker>(m, "Tracker", "energy::Tracker: meters sampled on a C++ thread")
      .def(py::init([](double interval_s, std::string project_name, std::string experiment_id,
                       std::string country, std::string cloud, std::string grid_zone,
                       std::optional<double> pue, std::optional<double> price_per_kwh,
                       std::string currency, std::optional<std::vector<int>> gpu_ids,
                       std::optional<double> cpu_power_w, std::optional<double> default_cpu_power_w,
                       std::string nvml_library) {
             TrackerSettings s;
             s.interval_s = interval_s;
             s.project_name = std::move(project_name);
             s.experiment_id = std::move(experiment_id);
             s.location.country = std::move(country);
             s.location.cloud = std::move(cloud);
             s.location.grid_zone = std::move(grid_zone);
             s.location.pue = pue;
             s.price_per_kwh = price_per_kwh;
             s.currency = std::move(currency);
             s.gpu_ids = std::move(gpu_ids);
             s.cpu_power_w = cpu_power_w;
             s.default_cpu_power_w = default_cpu_power_w;
             s.nvml_library = std::move(nvml_library);
             return make_tracker(s);
           }),
           py::kw_only(), py::arg("interval_s") = 15.0, py::arg("project_name") = "verdant",
           py::arg("experiment_id") = "", py::arg("country") = "", py::arg("cloud") = "",
           py::arg("grid_zone") = "", py::arg("pue") = py::none(),
           py::arg("price_per_kwh") = py::none(), py::arg("currency") = "USD",
           py::arg("gpu_ids") = py::none(), py::arg("cpu_power_w") = py::none(),
           py::arg("default_cpu_power_w") = py::none(),
           py::arg("nvml_library") = "libnvidia-ml.so.1", release())
      .def("start", &en::Tracker::start, release())
      .def("stop", &en::Tracker::stop, release())
      .def("running", &en::Tracker::running)
      .def("begin_phase", &en::Tracker::begin_phase, py::arg("name"), release())
      .def("end_phase", &en::Tracker::end_phase, py::arg("id"), release())
      .def("snapshot", &en::Tracker::snapshot, release())
      .def("sample_now", &en::Tracker::sample_now, release())
      .def("results", &en::Tracker::results, release())
      .def_property_readonly("run_info", [](const en::Tracker& t) { return t.run_info(); })
      .def_property_readonly("warnings", &en::Tracker::warnings);

  py::class_<en::MetricsServer>(m, "MetricsServer",
                                "GET /metrics on 127.0.0.1: the tracker's live figures")
      .def(py::init([](en::Tracker& tracker, std::uint16_t port, const en::RunInfo& info) {
             // The body is built on the server's thread from C++ state only: no GIL needed.
             return std::make_unique<en::MetricsServer>(
                 [&tracker, info] {
                   en::PhaseResult live = tracker.snapshot();
                   return en::prometheus_text(std::span(&live, 1), info);
                 },
                 port);
           }),
           py::arg("tracker"), py::arg("port"), py::arg("info"), py::keep_alive<1, 2>())
      .def_property_readonly("port", &en::MetricsServer::port);

  m.def("codecarbon_columns", &en::codecarbon_columns);
  m.def("emissions_csv_row", &en::emissions_csv_row, py::arg("phase"), py::arg("info"));
  m.def(
      "append_emissions_csv",
      [](const std::filesystem::path& path, const py::iterable& phases, const en::RunInfo& info) {
        auto list = phase_list(phases);
        py::gil_scoped_release unlocked;
        return en::append_emissions_csv(path, list, info);
      },
      py::arg("path"), py::arg("phases"), py::arg("info"));
  m.def("energy_json_record", &en::energy_json_record, py::arg("phase"), py::arg("info"));
  m.def(
      "append_energy_jsonl",
      [](const std::filesystem::path& path, const py::iterable& phases, const en::RunInfo& info) {
        auto list = phase_list(phases);
        py::gil_scoped_release unlocked;
        en::append_energy_jsonl(path, list, info);
      },
      py::arg("path"), py::arg("phases"), py::arg("info"));
  m.def(
      "prometheus_text",
      [](const py::iterable& phases, const en::RunInfo& info) {
        return en::prometheus_text(phase_list(phases), info);
      },
      py::arg("phases"), py::arg("info"));
  m.def("write_prometheus_textfile", &en::write_prometheus_textfile, py::arg("path"),
        py::arg("text"), release());
  m.def("check_writable_file", &check_writable_file, py::arg("path"), release());
  m.def("create_writable_folder", &create_writable_folder, py::arg("folder"), release());
  m.def("default_machine_lock_path", &en::default_machine_lock_path);
}

}  // namespace verdant::python
