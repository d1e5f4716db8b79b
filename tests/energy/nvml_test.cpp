// The NVML meter against a fake libnvidia-ml built by these tests (fake_nvml.c).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <thread>

#include "verdant/core/error.hpp"
#include "verdant/energy/meter.hpp"

namespace verdant::energy {
namespace {

class Nvml : public ::testing::Test {
 protected:
  void SetUp() override {
    ::unsetenv("FAKE_NVML_INIT");
    ::setenv("FAKE_NVML_DEVICES", "1", 1);
    ::setenv("FAKE_NVML_MODE", "energy", 1);
  }
};

TEST_F(Nvml, EnergyCounterPath) {
  ::setenv("FAKE_NVML_DEVICES", "2", 1);
  auto meter = make_nvml_meter(VERDANT_FAKE_NVML);
  EXPECT_TRUE(meter->measured());
  EXPECT_EQ(meter->source(), "measured (nvml: 2 GPU energy counters)");
  EXPECT_EQ(meter->device_names(), (std::vector<std::string>{"Fake GPU 0", "Fake GPU 1"}));
  EXPECT_FALSE(meter->utilization().has_value());  // nothing read yet
  // Each counter read advances the fake counter by 1.5 J: 2 GPUs x 1.5 J per read.
  EXPECT_DOUBLE_EQ(meter->read()[Domain::gpu], 3.0);
  // The fake's GPUs are 20% and 30% busy: their mean, for emissions.csv.
  ASSERT_TRUE(meter->utilization().has_value());
  EXPECT_DOUBLE_EQ(*meter->utilization(), 0.25);
  EXPECT_DOUBLE_EQ(meter->read()[Domain::gpu], 6.0);
  EXPECT_DOUBLE_EQ(meter->read()[Domain::cpu], 0.0);
}

TEST_F(Nvml, GpuIdsPickDevicesAndEachReportsItsOwnEnergy) {
  ::setenv("FAKE_NVML_DEVICES", "3", 1);
  auto meter = make_nvml_meter(VERDANT_FAKE_NVML, {2, 0});
  EXPECT_EQ(meter->device_names(), (std::vector<std::string>{"Fake GPU 2", "Fake GPU 0"}));
  EXPECT_TRUE(meter->device_joules().size() == 2 && meter->device_joules()[0].joules == 0);
  EXPECT_DOUBLE_EQ(meter->read()[Domain::gpu], 3.0);  // two GPUs, 1.5 J each
  auto devices = meter->device_joules();
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].index, 2);
  EXPECT_EQ(devices[1].index, 0);
  EXPECT_DOUBLE_EQ(devices[0].joules, 1.5);
  EXPECT_DOUBLE_EQ(devices[1].joules, 1.5);
  try {
    make_nvml_meter(VERDANT_FAKE_NVML, {3});
    FAIL();
  } catch (const SettingError& e) {
    EXPECT_EQ(e.setting(), "gpu_ids");
    EXPECT_EQ(std::string(e.what()), "gpu_ids: no GPU 3 (NVML sees 3, 0 to 2)");
  }
  // Asked-for GPUs without NVML are an error, not a silent CPU-only run.
  MeterOptions o;
  o.force_estimate = true;
  o.nvml_library = "/nonexistent/libnvidia-ml.so.1";
  o.gpu_ids = {0};
  EXPECT_THROW(select_meters(o), SettingError);
}

TEST_F(Nvml, PowerSamplingPathIntegratesOverTime) {
  ::setenv("FAKE_NVML_MODE", "power", 1);
  auto outer_start = std::chrono::steady_clock::now();
  auto meter = make_nvml_meter(VERDANT_FAKE_NVML);
  auto inner_start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::milliseconds(60));
  auto inner_end = std::chrono::steady_clock::now();
  double j = meter->read()[Domain::gpu];
  auto outer_end = std::chrono::steady_clock::now();
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  // Constant 50 W: energy = 50 W x the time between construction and read.
  EXPECT_GE(j, 50.0 * secs(inner_start, inner_end));
  EXPECT_LE(j, 50.0 * secs(outer_start, outer_end));
  EXPECT_EQ(meter->source(), "measured (nvml: 1 GPU power sampled x time)");
}

TEST_F(Nvml, MixedDevices) {
  ::setenv("FAKE_NVML_MODE", "mixed", 1);
  ::setenv("FAKE_NVML_DEVICES", "2", 1);
  auto meter = make_nvml_meter(VERDANT_FAKE_NVML);
  EXPECT_EQ(meter->source(), "measured (nvml: 1 GPU energy counter + 1 GPU power sampled x time)");
  EXPECT_GE(meter->read()[Domain::gpu], 1.5);
}

TEST_F(Nvml, MissingLibraryInitFailureAndNoDevice) {
  try {
    make_nvml_meter("/nonexistent/libnvidia-ml.so.1");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("NVML unavailable"), std::string::npos) << e.what();
  }
  ::setenv("FAKE_NVML_INIT", "9", 1);  // NVML_ERROR_DRIVER_NOT_LOADED
  try {
    make_nvml_meter(VERDANT_FAKE_NVML);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "NVML: nvmlInit_v2 failed (nvmlReturn_t 9)");
  }
  ::unsetenv("FAKE_NVML_INIT");
  ::setenv("FAKE_NVML_DEVICES", "0", 1);
  EXPECT_THROW(make_nvml_meter(VERDANT_FAKE_NVML), Error);
}

TEST_F(Nvml, SelectionAddsTheGpuMeter) {
  MeterOptions o;
  o.nvml_library = VERDANT_FAKE_NVML;
  o.force_estimate = true;
  MeterSet set = select_meters(o);
  ASSERT_EQ(set.meters.size(), 2u);
  EXPECT_EQ(set.meters[0]->name(), "estimate");
  EXPECT_EQ(set.meters[1]->name(), "nvml");
  o.nvml_library = "/nonexistent/libnvidia-ml.so.1";  // no GPU: no meter, no warning
  set = select_meters(o);
  EXPECT_EQ(set.meters.size(), 1u);
  EXPECT_TRUE(set.warnings.empty());
}

}  // namespace
}  // namespace verdant::energy
