// `verdant measure` end to end through the real binary: exit codes like a shell, the
// report and files for a crashing command, one-line errors for bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "energy_test_util.hpp"
#include "verdant/core/io.hpp"

namespace verdant::energy {
namespace {

using testing::TempDir;
using testing::write_text;

struct CliRun {
  int code = -1;
  std::string err;
};

// Runs `verdant ARGS` in `dir` with stderr captured; the machine lock is private.
CliRun verdant(const TempDir& dir, const std::string& args) {
  std::string cmd = "cd '" + dir.path().string() + "' && VERDANT_MACHINE_LOCK='" +
                    (dir / "lock").string() + "' '" VERDANT_EXE "' " + args +
                    " 2> stderr.txt > stdout.txt";
  int status = std::system(cmd.c_str());
  CliRun r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file_text(dir / "stderr.txt");
  return r;
}

CliRun measure(const TempDir& dir, const std::string& args) {
  return verdant(dir, "measure " + args);
}

TEST(MeasureCli, ExitCodePassesThroughAndFilesAreWritten) {
  TempDir t;
  CliRun r = measure(t, "--country FRA --price 0.2 --out out -- sh -c 'exit 7'");
  EXPECT_EQ(r.code, 7) << r.err;
  EXPECT_NE(r.err.find("exited with 7"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("country FRA"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("cost "), std::string::npos) << r.err;
  std::string csv = read_file_text(t / "out/emissions.csv");
  EXPECT_EQ(csv.rfind("timestamp,project_name,run_id,experiment_id,", 0), 0u);
  EXPECT_NE(csv.find(",France,FRA,"), std::string::npos) << csv;
  auto j = nlohmann::json::parse(read_file_text(t / "out/energy.jsonl"));
  EXPECT_EQ(j["phase"], "total");
  EXPECT_TRUE(j["sources"]["cpu"]["kind"] == "estimated" ||
              j["sources"]["cpu"]["kind"] == "measured");
}

TEST(MeasureCli, CrashStillGetsItsReport) {
  TempDir t;
  CliRun r = measure(t, "-- sh -c 'kill -SEGV $$'");
  EXPECT_EQ(r.code, 139) << r.err;
  EXPECT_NE(r.err.find("killed by signal 11"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("energy (process)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("world average 475"), std::string::npos) << r.err;  // default said
  EXPECT_FALSE(read_file_text(t / "emissions.csv").empty());
}

TEST(MeasureCli, CommandThatCannotStartIs127) {
  TempDir t;
  CliRun r = measure(t, "-- /nonexistent/program arg");
  EXPECT_EQ(r.code, 127);
  EXPECT_NE(r.err.find("verdant: error: cannot start '/nonexistent/program': No such file or "
                       "directory\n"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(t / "emissions.csv"));
}

TEST(MeasureCli, BadInputIsOneLineError) {
  TempDir t;
  CliRun r = measure(t, "--interval 0 -- true");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("verdant: error: --interval"), std::string::npos) << r.err;
  r = measure(t, "--country Frnace -- true");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("FRA"), std::string::npos) << r.err;
  r = measure(t, "--country FRA --cloud aws:us-east-1 -- true");
  EXPECT_EQ(r.code, 2) << r.err;
  r = measure(t, "");
  EXPECT_EQ(r.code, 2) << r.err;
}

TEST(MeasureCli, BadPueOrPriceIsOneLineBeforeTheCommandRuns) {
  TempDir t;
  CliRun r = measure(t, "--pue 0.5 -- touch MARKER");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "verdant: error: PUE must be a number >= 1.0, got 0.5\n");
  r = measure(t, "--price nan -- touch MARKER");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "verdant: error: --price must be a finite number of money per kWh >= 0, got nan\n");
  r = measure(t, "--price -1 --out out -- touch MARKER");
  EXPECT_EQ(r.code, 2);
  EXPECT_FALSE(std::filesystem::exists(t / "MARKER"));
  EXPECT_FALSE(std::filesystem::exists(t / "out"));
}

TEST(MeasureCli, OutputsThatCannotBeWrittenAreRefusedBeforeTheCommandRuns) {
  TempDir t;
  write_text(t / "afile", "x");
  CliRun r = measure(t, "--out afile -- touch MARKER");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "verdant: error: --out afile: is a file, expected a folder\n");
  EXPECT_EQ(read_file_text(t / "afile"), "x");
  std::filesystem::create_directories(t / "out/energy.jsonl");
  r = measure(t, "--out out -- touch MARKER");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "verdant: error: --out out/energy.jsonl: is a directory, expected a file\n");
  r = measure(t, "--prometheus-file none/m.prom -- touch MARKER");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "verdant: error: --prometheus-file none/m.prom: cannot write: none is not an existing "
            "folder\n");
  EXPECT_FALSE(std::filesystem::exists(t / "MARKER"));
  r = measure(t, "--out new/folder -- touch MARKER");  // a folder still to be made is fine
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::filesystem::exists(t / "MARKER"));
  EXPECT_TRUE(std::filesystem::exists(t / "new/folder/energy.jsonl"));
}

TEST(MeasureCli, CodeCarbon3ColumnsWaterAndPythonVersion) {
  TempDir t;
  if (std::system("/usr/bin/python3 -c pass > /dev/null 2>&1") != 0) GTEST_SKIP() << "no python3";
  // The version emissions.csv should carry, asked of the interpreter the way a user would.
  std::system(("/usr/bin/python3 -c 'import platform; print(platform.python_version())' > '" +
               (t / "version.txt").string() + "'")
                  .c_str());
  std::string version = read_file_text(t / "version.txt");
  version.erase(version.find_last_not_of("\n") + 1);
  CliRun r = measure(t, "--wue 2 --out out -- /usr/bin/python3 -c 'sum(range(3000000))'");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(read_file_text(t / "out/emissions.csv"));
  std::string header, row;
  std::getline(lines, header);
  std::getline(lines, row);
  auto fields = [](const std::string& line) {
    std::vector<std::string> f;
    std::stringstream in(line);
    for (std::string x; std::getline(in, x, ',');) f.push_back(x);
    if (!line.empty() && line.back() == ',') f.emplace_back();
    return f;
  };
  const auto names = fields(header), values = fields(row);
  ASSERT_EQ(names.size(), 38u) << header;
  ASSERT_EQ(values.size(), 38u) << row;  // the CPU model here has no comma
  auto col = [&](const std::string& name) {
    return values[static_cast<std::size_t>(std::find(names.begin(), names.end(), name) -
                                           names.begin())];
  };
  EXPECT_EQ(col("python_version"), version);
  EXPECT_EQ(col("codecarbon_version"), "");
  EXPECT_NEAR(std::stod(col("water_consumed")), 2 * std::stod(col("energy_consumed")), 1e-15);
  EXPECT_EQ(col("wue"), "2");
  EXPECT_GT(std::stod(col("cpu_utilization_percent")), 0);
  EXPECT_GT(std::stod(col("ram_used_gb")), 0);
  // Not a Python command: no version.
  r = measure(t, "--out out2 -- true");
  EXPECT_EQ(fields(read_file_text(t / "out2/emissions.csv").substr(header.size() + 1))[21], "");
}

TEST(MeasureCli, PrometheusTextfilePassesPromtool) {
  TempDir t;
  if (std::system("command -v promtool > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "promtool is not installed (scripts/setup installs it)";
  CliRun r = measure(t, "--price 0.2 --prometheus-file m.prom -- true");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string cmd =
      "cd '" + t.path().string() + "' && promtool check metrics < m.prom > promtool.txt 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0) << read_file_text(t / "promtool.txt");
  EXPECT_NE(read_file_text(t / "m.prom").find("verdant_energy_joules_total{"), std::string::npos);
}

TEST(MeasureCli, BadPowerModelOrWueNamesTheFlagBeforeTheCommandRuns) {
  TempDir t;
  write_text(t / "model.json", "{\"format\": \"something else\"}");
  CliRun r = measure(t, "--power-model model.json --out out -- touch MARKER");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "verdant: error: --power-model model.json: not a power model (no \"format\": "
            "\"verdant power model\"); `verdant calibrate` writes one\n");
  r = measure(t, "--wue -1 --out out -- touch MARKER");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "verdant: error: --wue must be a number of litres per kWh >= 0, got -1\n");
  EXPECT_FALSE(std::filesystem::exists(t / "MARKER"));
  EXPECT_FALSE(std::filesystem::exists(t / "out"));
}

TEST(CalibrateCli, NeedsReadableRaplAndSaysWhy) {
  TempDir t;
  CliRun r = verdant(t, "calibrate --powercap no-tree --seconds-per-level 0.1");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err,
            "verdant: error: calibrate needs a readable RAPL counter: no-tree: no powercap tree\n");
  EXPECT_FALSE(std::filesystem::exists(t / "power-model.json"));
  r = verdant(t, "calibrate --loads 50");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "verdant: error: --loads needs at least 2 levels to fit a line\n");
}

TEST(MeasureCli, GridZoneThatIsAMissingFileSaysSo) {
  TempDir t;
  CliRun r = measure(t, "--grid-zone data/zone.csv -- touch MARKER");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "verdant: error: --grid-zone data/zone.csv: no such file\n");
  EXPECT_FALSE(std::filesystem::exists(t / "MARKER"));
}

}  // namespace
}  // namespace verdant::energy
