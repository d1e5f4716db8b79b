// Meter selection: RAPL when its counters can be read, otherwise the estimate with a warning
// that says why; NVML on top when a GPU answers.
#include <string>

#include "verdant/core/error.hpp"
#include "verdant/energy/meter.hpp"

namespace verdant::energy {

const char* domain_name(Domain d) {
  switch (d) {
    case Domain::cpu:
      return "cpu";
    case Domain::dram:
      return "dram";
    case Domain::gpu:
      return "gpu";
  }
  return "?";
}

MeterSet select_meters(const MeterOptions& options) {
  MeterSet set;
  bool have_cpu = false;
  if (!options.force_estimate) {
    try {
      set.meters.push_back(make_rapl_meter(options.powercap_root));
      have_cpu = true;
    } catch (const Error& e) {
      set.warnings.push_back(std::string("RAPL unreadable: ") + e.what() + "; using the estimate");
    }
  }
  if (have_cpu && !options.estimate.power_model.empty())
    set.warnings.push_back("power_model " + options.estimate.power_model.string() +
                           " not used: RAPL is readable, and measured figures win");
  if (!have_cpu) {
    std::unique_ptr<Meter> estimate = make_estimate_meter(options.estimate);
    for (auto& w : estimate->warnings()) set.warnings.push_back(w);
    set.meters.push_back(std::move(estimate));
  }
  if (options.use_nvml) {
    try {
      set.meters.push_back(make_nvml_meter(options.nvml_library, options.gpu_ids));
    } catch (const SettingError&) {
      throw;  // GPUs asked for by index that are not there
    } catch (const Error& e) {
      // No GPU or no driver is the normal case on CPU machines: nothing to warn about, unless
      // GPUs were asked for.
      if (!options.gpu_ids.empty())
        throw SettingError("gpu_ids", std::string("gpu_ids: GPUs asked for, but ") + e.what());
    }
  }
  return set;
}

}  // namespace verdant::energy
