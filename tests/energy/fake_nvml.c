/* A stand-in for libnvidia-ml.so.1 so the NVML meter is tested without a GPU. Behaviour is
   chosen by environment variables read in nvmlInit_v2:
     FAKE_NVML_DEVICES  number of GPUs (default 1)
     FAKE_NVML_MODE     "energy" (total-energy counter), "power" (counter not supported,
                        power only) or "mixed" (GPU 0 energy, the others power)
     FAKE_NVML_INIT     a non-zero nvmlReturn_t for nvmlInit_v2 to return
   The energy counter starts at 1,000,000 mJ and grows by 1500 mJ per call; power is 50 W;
   GPU i is busy (20 + 10 i)% of the time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 8
#define NVML_SUCCESS 0
#define NVML_ERROR_INVALID_ARGUMENT 2
#define NVML_ERROR_NOT_SUPPORTED 3

static unsigned int device_count = 1;
static int mode = 0; /* 0 energy, 1 power, 2 mixed */
static unsigned long long energy_mj[MAX_DEVICES];
static int devices[MAX_DEVICES];

int nvmlInit_v2(void) {
  const char* init = getenv("FAKE_NVML_INIT");
  if (init && atoi(init) != 0) return atoi(init);
  const char* n = getenv("FAKE_NVML_DEVICES");
  device_count = n ? (unsigned int)atoi(n) : 1;
  if (device_count > MAX_DEVICES) device_count = MAX_DEVICES;
  const char* m = getenv("FAKE_NVML_MODE");
  mode = !m || strcmp(m, "energy") == 0 ? 0 : strcmp(m, "power") == 0 ? 1 : 2;
  for (unsigned int i = 0; i < MAX_DEVICES; ++i) {
    energy_mj[i] = 1000000ULL;
    devices[i] = (int)i;
  }
  return NVML_SUCCESS;
}

int nvmlShutdown(void) {
  return NVML_SUCCESS;
}

int nvmlDeviceGetCount_v2(unsigned int* count) {
  *count = device_count;
  return NVML_SUCCESS;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned int index, void** device) {
  if (index >= device_count) return NVML_ERROR_INVALID_ARGUMENT;
  *device = &devices[index];
  return NVML_SUCCESS;
}

int nvmlDeviceGetName(void* device, char* name, unsigned int length) {
  snprintf(name, length, "Fake GPU %d", *(int*)device);
  return NVML_SUCCESS;
}

int nvmlDeviceGetTotalEnergyConsumption(void* device, unsigned long long* energy) {
  int i = *(int*)device;
  if (mode == 1 || (mode == 2 && i > 0)) return NVML_ERROR_NOT_SUPPORTED;
  energy_mj[i] += 1500ULL;
  *energy = energy_mj[i];
  return NVML_SUCCESS;
}

int nvmlDeviceGetPowerUsage(void* device, unsigned int* milliwatts) {
  (void)device;
  *milliwatts = 50000U;
  return NVML_SUCCESS;
}

typedef struct {
  unsigned int gpu;
  unsigned int memory;
} fake_utilization_t;

int nvmlDeviceGetUtilizationRates(void* device, fake_utilization_t* utilization) {
  utilization->gpu = 20U + 10U * (unsigned int)*(int*)device;
  utilization->memory = 5U;
  return NVML_SUCCESS;
}
