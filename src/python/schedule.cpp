// The scheduler for Python: the plan behind `verdant schedule --json` (same options, same
// JSON), intensity lookups for should_pause, and the carbon-aware pause controller on a real
// or simulated clock. A real wait sleeps with the GIL released, in short slices that check
// for Ctrl-C, so KeyboardInterrupt still reaches the user's loop.
#include <pybind11/stl.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "bindings.hpp"
#include "verdant/core/error.hpp"
#include "verdant/energy/intensity.hpp"
#include "verdant/schedule/plan.hpp"
#include "verdant/schedule/policy.hpp"
#include "verdant/schedule/window.hpp"

namespace verdant::python {

namespace en = verdant::energy;
namespace sc = verdant::schedule;
namespace chr = std::chrono;

namespace {

en::UtcSeconds to_utc(double unix_s) {
  return en::UtcSeconds(chr::seconds(static_cast<long long>(std::floor(unix_s))));
}

double from_utc(en::UtcSeconds t) {
  return static_cast<double>(t.time_since_epoch().count());
}

chr::seconds duration_setting(const std::string& text, const std::string& setting) {
  auto d = sc::parse_duration(text);
  if (!d || d->count() < 0)
    throw SettingError(setting, setting + ": '" + text + "' is not a duration (e.g. 4h, 90m)");
  return *d;
}

en::SeriesOptions series_options(const std::string& max_gap) {
  en::SeriesOptions o;
  o.max_interpolated_gap = duration_setting(max_gap, "max_gap");
  return o;
}

// The system clock, sleeping in slices so that a signal (Ctrl-C) ends the wait.
class InterruptibleClock : public sc::SystemClock {
 public:
  void sleep_until(en::UtcSeconds t) override {
    constexpr auto kSlice = chr::milliseconds(200);
    for (auto now = chr::system_clock::now(); now < t; now = chr::system_clock::now()) {
      std::this_thread::sleep_for(std::min<chr::system_clock::duration>(t - now, kSlice));
      py::gil_scoped_acquire gil;
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
    }
  }
};

// A zone's series, a clock and the Pause policy over them, alive together.
class PauseController {
 public:
  PauseController(const std::string& zone, double threshold, const std::string& max_delay,
                  const std::string& simulate_clock, const std::string& max_gap)
      : series_(en::load_zone_or_series(zone, series_options(max_gap), "zone")),
        clock_(make_clock(simulate_clock)),
        threshold_(threshold),
        controller_(series_, *clock_, options(threshold, max_delay)) {
    // Start (it never sleeps in a low slot); in a high one the first should_pause() says so.
    if (low_now()) start();
  }

  bool should_pause() { return controller_.should_pause(); }
  void wait() {
    controller_.wait();
    if (!started_ && low_now()) start();
  }
  void record_step(double seconds, double joules) {
    if (!(seconds >= 0)) throw SettingError("seconds", "seconds must be >= 0");
    if (!started_) start();
    controller_.record_step({chr::seconds(static_cast<long long>(std::llround(seconds))), joules});
  }
  std::optional<double> resume_time() const {
    auto t = controller_.resume_time();
    return t ? std::optional<double>(from_utc(*t)) : std::nullopt;
  }
  double now() const { return from_utc(clock_->now()); }
  bool simulated() const { return clock_->simulated(); }
  const en::IntensitySeries& series() const { return series_; }
  py::dict report() const {
    const sc::RunReport& r = controller_.report();
    py::dict d;
    d["policy"] = sc::policy_name(r.policy);
    d["submitted"] = en::format_utc_timestamp(r.submitted);
    d["started"] = en::format_utc_timestamp(r.started);
    d["finished"] = en::format_utc_timestamp(r.finished);
    d["steps"] = r.steps;
    d["pauses"] = r.pauses;
    d["waited_s"] = r.waited.count();
    d["gave_up"] = r.gave_up;
    d["joules"] = r.joules;
    py::list waits;
    for (const auto& w : r.waits)
      waits.append(
          py::make_tuple(en::format_utc_timestamp(w.from), en::format_utc_timestamp(w.to)));
    d["waits"] = waits;
    return d;
  }

 private:
  static std::unique_ptr<sc::Clock> make_clock(const std::string& simulate_clock) {
    if (simulate_clock.empty()) return std::make_unique<InterruptibleClock>();
    auto t = en::parse_utc_timestamp(simulate_clock);
    if (!t)
      throw SettingError("simulate_clock",
                         "simulate_clock: '" + simulate_clock + "' is not an ISO-8601 UTC time");
    return std::make_unique<sc::SimulatedClock>(*t);
  }
  static sc::PolicyOptions options(double threshold, const std::string& max_delay) {
    if (!(threshold >= 0))
      throw SettingError("threshold", "threshold must be a number of gCO2eq/kWh >= 0");
    sc::PolicyOptions o;
    o.policy = sc::Policy::Pause;
    o.threshold = threshold;
    o.max_delay = duration_setting(max_delay, "max_delay");
    return o;
  }
  bool low_now() const {
    auto i = series_.index_of(clock_->now());
    if (!i) series_.at(clock_->now());  // throws: names the series and its range
    return series_.known(*i) && series_.value(*i) <= threshold_;
  }
  void start() {
    controller_.start();
    started_ = true;
  }

  en::IntensitySeries series_;
  std::unique_ptr<sc::Clock> clock_;
  double threshold_ = 0;
  sc::CarbonAwareController controller_;
  bool started_ = false;
};

}  // namespace

void bind_schedule(py::module_& m) {
  using release = py::call_guard<py::gil_scoped_release>;
  m.def(
      "plan_json",
      [](std::vector<std::string> zones, std::string location, std::string duration,
         std::optional<double> energy_kwh, std::optional<double> power_w, std::string within,
         std::string start, std::string end, std::string now, std::string max_gap,
         std::size_t runner_ups) {
        sc::PlanOptions o;
        o.zones = std::move(zones);
        o.location = std::move(location);
        o.duration = std::move(duration);
        o.energy_kwh = energy_kwh;
        o.power_w = power_w;
        o.within = std::move(within);
        o.start = std::move(start);
        o.end = std::move(end);
        o.now = std::move(now);
        o.max_gap = std::move(max_gap);
        o.runner_ups = runner_ups;
        return sc::plan_json(sc::plan_schedule(o));
      },
      py::kw_only(), py::arg("zones"), py::arg("location") = "", py::arg("duration") = "",
      py::arg("energy_kwh") = py::none(), py::arg("power_w") = py::none(), py::arg("within") = "",
      py::arg("start") = "", py::arg("end") = "", py::arg("now") = "", py::arg("max_gap") = "6h",
      py::arg("runner_ups") = 3, release(),
      "The JSON `verdant schedule --json` prints for the same settings");

  m.def(
      "duration_seconds",
      [](const std::string& text, const std::string& setting) {
        return static_cast<double>(duration_setting(text, setting).count());
      },
      py::arg("text"), py::arg("setting"), "Seconds in '4h', '90m', '1h30m' or '3600'");

  py::class_<en::IntensitySeries>(m, "Series", "A zone's carbon-intensity series (gCO2eq/kWh)")
      .def(py::init([](const std::string& zone, const std::string& max_gap) {
             return en::load_zone_or_series(zone, series_options(max_gap), "zone");
           }),
           py::arg("zone"), py::arg("max_gap") = "6h", release())
      .def_property_readonly("name", &en::IntensitySeries::name)
      .def_property_readonly("source", &en::IntensitySeries::source)
      .def_property_readonly("start",
                             [](const en::IntensitySeries& s) { return from_utc(s.start()); })
      .def_property_readonly("end", [](const en::IntensitySeries& s) { return from_utc(s.end()); })
      .def(
          "value_at",
          [](const en::IntensitySeries& s, double t) -> std::optional<double> {
            auto i = s.index_of(to_utc(t));
            if (!i) s.at(to_utc(t));  // throws: names the series and its range
            if (!s.known(*i)) return std::nullopt;
            return s.value(*i);
          },
          py::arg("unix_seconds"),
          "Intensity of the slot holding the time; None in a data gap; an error outside");

  py::class_<PauseController>(m, "PauseController",
                              "The Pause policy (schedule::CarbonAwareController) on a clock")
      .def(py::init<const std::string&, double, const std::string&, const std::string&,
                    const std::string&>(),
           py::arg("zone"), py::arg("threshold"), py::arg("max_delay") = "7d",
           py::arg("simulate_clock") = "", py::arg("max_gap") = "6h", release())
      .def("should_pause", &PauseController::should_pause)
      .def("wait", &PauseController::wait, release())
      .def("record_step", &PauseController::record_step, py::arg("seconds"),
           py::arg("joules") = 0.0)
      .def("resume_time", &PauseController::resume_time)
      .def("now", &PauseController::now)
      .def_property_readonly("simulated", &PauseController::simulated)
      .def_property_readonly("zone", [](const PauseController& p) { return p.series().name(); })
      .def("report", &PauseController::report);
}

}  // namespace verdant::python
