// NVIDIA GPUs through NVML, loaded with dlopen so Verdant has no build dependency on the
// driver. Signatures follow nvml.h: nvmlReturn_t is an int (0 = NVML_SUCCESS), devices are
// opaque handles, energy is in millijoules since the driver loaded, power in milliwatts.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>

#include "verdant/core/error.hpp"
#include "verdant/energy/meter.hpp"

namespace verdant::energy {

namespace {

using nvmlDevice_t = void*;
using InitFn = int (*)();
using ShutdownFn = int (*)();
using CountFn = int (*)(unsigned int*);
using HandleFn = int (*)(unsigned int, nvmlDevice_t*);
using EnergyFn = int (*)(nvmlDevice_t, unsigned long long*);
using PowerFn = int (*)(nvmlDevice_t, unsigned int*);
using NameFn = int (*)(nvmlDevice_t, char*, unsigned int);
struct NvmlUtilization {  // nvmlUtilization_t: percent of time busy over the last period
  unsigned int gpu;
  unsigned int memory;
};
using UtilizationFn = int (*)(nvmlDevice_t, NvmlUtilization*);

struct Gpu {
  unsigned int index = 0;  // NVML's
  nvmlDevice_t handle = nullptr;
  std::string name;
  bool has_energy = false;
  unsigned long long first_mj = 0;
  double last_w = 0;
  double joules = 0;
};

class NvmlMeter final : public Meter {
 public:
  NvmlMeter(const std::string& library, const std::vector<int>& gpu_ids) : library_(library) {
    lib_ = ::dlopen(library.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib_) {
      const char* why = ::dlerror();
      throw Error(std::string("NVML unavailable: ") + (why ? why : library.c_str()));
    }
    try {
      auto init = symbol<InitFn>("nvmlInit_v2");
      shutdown_ = symbol<ShutdownFn>("nvmlShutdown");
      auto count_fn = symbol<CountFn>("nvmlDeviceGetCount_v2");
      auto handle_fn = symbol<HandleFn>("nvmlDeviceGetHandleByIndex_v2");
      energy_ = symbol<EnergyFn>("nvmlDeviceGetTotalEnergyConsumption");
      power_ = symbol<PowerFn>("nvmlDeviceGetPowerUsage");
      auto name_fn = reinterpret_cast<NameFn>(::dlsym(lib_, "nvmlDeviceGetName"));
      utilization_ =
          reinterpret_cast<UtilizationFn>(::dlsym(lib_, "nvmlDeviceGetUtilizationRates"));
      check(init(), "nvmlInit_v2");
      initialised_ = true;
      unsigned int count = 0;
      check(count_fn(&count), "nvmlDeviceGetCount_v2");
      if (count == 0) throw Error("NVML: no GPU found");
      std::vector<unsigned int> chosen;
      for (int id : gpu_ids) {
        if (id < 0 || static_cast<unsigned int>(id) >= count)
          throw SettingError("gpu_ids", "gpu_ids: no GPU " + std::to_string(id) + " (NVML sees " +
                                            std::to_string(count) + ", 0 to " +
                                            std::to_string(count - 1) + ")");
        if (std::find(chosen.begin(), chosen.end(), unsigned(id)) == chosen.end())
          chosen.push_back(static_cast<unsigned int>(id));
      }
      if (gpu_ids.empty())
        for (unsigned int i = 0; i < count; ++i) chosen.push_back(i);
      for (unsigned int i : chosen) {
        Gpu g;
        g.index = i;
        check(handle_fn(i, &g.handle), "nvmlDeviceGetHandleByIndex_v2");
        char name[96] = {0};
        if (name_fn && name_fn(g.handle, name, sizeof name) == 0)
          g.name = name;
        else
          g.name = "GPU " + std::to_string(i);
        // Volta and newer keep a total-energy counter; older GPUs only report power.
        g.has_energy = energy_(g.handle, &g.first_mj) == 0;
        if (!g.has_energy) {
          unsigned int mw = 0;
          check(power_(g.handle, &mw), "nvmlDeviceGetPowerUsage");
          g.last_w = mw * 1e-3;
        }
        gpus_.push_back(std::move(g));
      }
      last_ = std::chrono::steady_clock::now();
    } catch (...) {
      close();
      throw;
    }
  }
  ~NvmlMeter() override { close(); }

  Joules read() override {
    auto now = std::chrono::steady_clock::now();
    double dt = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    Joules out;
    double busy = 0;
    int answered = 0;
    for (auto& g : gpus_) {
      NvmlUtilization u{};
      // Utilisation is a figure for emissions.csv, not energy: a GPU without it is skipped.
      if (utilization_ && utilization_(g.handle, &u) == 0 && u.gpu <= 100) {
        busy += u.gpu / 100.0;
        ++answered;
      }
      if (g.has_energy) {
        unsigned long long mj = 0;
        check(energy_(g.handle, &mj), "nvmlDeviceGetTotalEnergyConsumption");
        g.joules = mj >= g.first_mj ? (mj - g.first_mj) * 1e-3 : g.joules;
      } else {
        unsigned int mw = 0;
        check(power_(g.handle, &mw), "nvmlDeviceGetPowerUsage");
        double w = mw * 1e-3;
        g.joules += 0.5 * (g.last_w + w) * dt;  // trapezoid between two samples
        g.last_w = w;
      }
      out[Domain::gpu] += g.joules;
    }
    utilization_now_ = answered ? std::optional<double>(busy / answered) : std::nullopt;
    return out;
  }
  std::optional<double> utilization() const override { return utilization_now_; }

  std::string name() const override { return "nvml"; }
  bool measured() const override { return true; }
  std::vector<Domain> domains() const override { return {Domain::gpu}; }
  std::string source() const override {
    int counters = 0;
    for (auto& g : gpus_) counters += g.has_energy;
    int sampled = static_cast<int>(gpus_.size()) - counters;
    std::string s = "measured (nvml: ";
    if (counters) s += std::to_string(counters) + " GPU energy counter" + (counters > 1 ? "s" : "");
    if (counters && sampled) s += " + ";
    if (sampled) s += std::to_string(sampled) + " GPU power sampled" + " x time";
    return s + ")";
  }
  std::vector<std::string> device_names() const override {
    std::vector<std::string> names;
    for (auto& g : gpus_) names.push_back(g.name);
    return names;
  }
  std::vector<DeviceJoules> device_joules() const override {
    std::vector<DeviceJoules> out;
    for (auto& g : gpus_) out.push_back({static_cast<int>(g.index), g.joules});
    return out;
  }

 private:
  template <typename F>
  F symbol(const char* name) {
    void* p = ::dlsym(lib_, name);
    if (!p) throw Error("NVML: " + library_ + " has no symbol " + name);
    return reinterpret_cast<F>(p);
  }
  static void check(int rc, const char* call) {
    if (rc != 0)
      throw Error(std::string("NVML: ") + call + " failed (nvmlReturn_t " + std::to_string(rc) +
                  ")");
  }
  void close() {
    if (initialised_ && shutdown_) shutdown_();
    initialised_ = false;
    if (lib_) ::dlclose(lib_);
    lib_ = nullptr;
  }

  std::string library_;
  void* lib_ = nullptr;
  bool initialised_ = false;
  ShutdownFn shutdown_ = nullptr;
  EnergyFn energy_ = nullptr;
  PowerFn power_ = nullptr;
  UtilizationFn utilization_ = nullptr;
  std::optional<double> utilization_now_;
  std::vector<Gpu> gpus_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace

std::unique_ptr<Meter> make_nvml_meter(const std::string& library,
                                       const std::vector<int>& gpu_ids) {
  return std::make_unique<NvmlMeter>(library, gpu_ids);
}

}  // namespace verdant::energy
