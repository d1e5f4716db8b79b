#pragma once
// `verdant report DIR...`: one self-contained HTML page (inline SVG and CSS, a few lines of
// script for hover) and a Markdown compute appendix, from sweep results folders and from the
// output folders of single `train` / `compress` runs.
#include <filesystem>
#include <string>
#include <vector>

namespace verdant::report {

// What a report reads from one folder.
struct EpochPoint {
  int epoch = 0;
  double train_loss = 0, test_accuracy = -1;  // -1: not evaluated
  double joules = -1;                         // the epoch's energy phase, -1: not tracked
};

struct RunRecord {
  std::string name;  // trial id, or the folder's name
  std::string candidate;
  std::vector<EpochPoint> epochs;
  std::vector<std::pair<std::string, double>> layer_sparsity;
  double accuracy = 0;
  double train_joules = 0;
  double train_seconds = 0;
  double train_flops = 0;
  double gco2 = 0;
  // From the run's energy records: kWh by domain and how each was obtained.
  double cpu_kwh = 0, gpu_kwh = 0, ram_kwh = 0;
  std::string cpu_source, gpu_source, ram_source;
  std::string carbon, pue;         // the intensity and PUE that applied, in words
  std::string hardware, location;  // from emissions.csv
  std::string carbon_aware_json;   // the run's carbon_aware.json, when it paused
};

struct ReportData {
  bool sweep = false;
  std::vector<RunRecord> runs;
  std::string source;  // folders read
};

// Reads the folders. A folder with sweep.json is a sweep's results; one with results.json is
// a single run. Anything else: verdant::Error naming it.
ReportData read_folders(const std::vector<std::filesystem::path>& dirs);

std::string html_report(const std::vector<std::filesystem::path>& dirs);
std::string compute_appendix(const std::vector<std::filesystem::path>& dirs);

}  // namespace verdant::report
