// emissions.csv (CodeCarbon's schema), energy.jsonl, Prometheus text and the /metrics endpoint.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>

#include "energy_test_util.hpp"
#include "verdant/core/io.hpp"
#include "verdant/energy/sinks.hpp"

namespace verdant::energy {
namespace {

using testing::TempDir;
using testing::write_text;

// The header CodeCarbon 3.2 writes (the EmissionsData dataclass in codecarbon/output_methods/
// emissions_data.py, mlco2/codecarbon tags v3.2.1 to v3.2.9).
const char* kCodeCarbon32Header =
    "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,"
    "gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,water_consumed,"
    "country_name,country_iso_code,region,cloud_provider,cloud_region,os,python_version,"
    "codecarbon_version,cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,"
    "ram_total_size,tracking_mode,cpu_utilization_percent,gpu_utilization_percent,"
    "ram_utilization_percent,ram_used_gb,on_cloud,pue,wue";
// What Verdant wrote before, CodeCarbon 2.x's header.
const char* kCodeCarbon2Header =
    "timestamp,project_name,run_id,experiment_id,duration,emissions,emissions_rate,cpu_power,"
    "gpu_power,ram_power,cpu_energy,gpu_energy,ram_energy,energy_consumed,country_name,"
    "country_iso_code,region,cloud_provider,cloud_region,os,python_version,codecarbon_version,"
    "cpu_count,cpu_model,gpu_count,gpu_model,longitude,latitude,ram_total_size,tracking_mode,"
    "on_cloud,pue";

// A small RFC 4180 reader, like a CodeCarbon-schema consumer (pandas.read_csv) would do.
std::vector<std::vector<std::string>> read_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows(1);
  std::string field;
  bool quoted = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (quoted) {
      if (c == '"' && i + 1 < text.size() && text[i + 1] == '"')
        field += text[++i];
      else if (c == '"')
        quoted = false;
      else
        field += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      rows.back().push_back(field);
      field.clear();
    } else if (c == '\n') {
      rows.back().push_back(field);
      field.clear();
      rows.emplace_back();
    } else {
      field += c;
    }
  }
  if (rows.back().empty()) rows.pop_back();
  return rows;
}

PhaseResult sample_phase() {
  PhaseResult p;
  p.name = "train";
  p.start = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
  p.end = p.start + std::chrono::seconds(10);
  p.duration_s = 10;
  p.process[Domain::cpu] = 360.0;  // 36 W over 10 s
  p.process[Domain::dram] = 36.0;
  p.process[Domain::gpu] = 0.0;
  p.machine = p.process;
  p.machine[Domain::cpu] = 720.0;
  p.machine_reported = true;
  p.measured = {false, false, false};
  p.source = {"estimated (vCPU model, test)", "estimated (RAM)", "none"};
  p.emissions_kg = 0.0000522;
  p.cpu_utilization = 0.875;
  p.ram_used_bytes = 6.0 * 1024 * 1024 * 1024;
  p.ram_total_bytes = 24.0 * 1024 * 1024 * 1024;
  p.machine_emissions_kg = 0.0001;
  p.cost = 0.00003;
  return p;
}

RunInfo sample_info() {
  RunInfo i;
  i.project_name = "proj";
  i.run_id = "11111111-2222-4333-8444-555555555555";
  i.country_name = "France";
  i.country_iso_code = "FRA";
  i.os = "Linux-6.1-x86_64";
  i.cpu_model = "Intel(R) Xeon(R) CPU E5-2620 v3 @ 2.40GHz, \"quoted\"";
  i.cpu_count = 2;
  i.ram_total_gb = 23.5;
  i.pue = 1.2;
  i.wue = 1.8;
  i.carbon_description = "country FRA";
  i.pue_description = "PUE 1.2 (flag)";
  i.currency = "EUR";
  i.machine_leader = true;
  return i;
}

TEST(EmissionsCsv, HeaderIsCodeCarbon32sColumnList) {
  std::string joined;
  for (auto& c : codecarbon_columns()) joined += (joined.empty() ? "" : ",") + c;
  EXPECT_EQ(joined, kCodeCarbon32Header);
  EXPECT_EQ(codecarbon_columns().size(), 38u);
}

TEST(EmissionsCsv, AppendsRowsWithTheHeaderOnceInCodeCarbonUnits) {
  TempDir t;
  auto path = t / "emissions.csv";
  PhaseResult p = sample_phase();
  RunInfo info = sample_info();
  EXPECT_EQ(append_emissions_csv(path, std::span(&p, 1), info), "");
  EXPECT_EQ(append_emissions_csv(path, std::span(&p, 1), info), "");
  auto rows = read_csv(read_file_text(path));
  ASSERT_EQ(rows.size(), 3u);
  const auto& header = rows[0];
  for (auto& r : rows) ASSERT_EQ(r.size(), 38u);
  auto col = [&](const std::string& name) {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return rows[1][i];
    ADD_FAILURE() << "no column " << name;
    return std::string();
  };
  EXPECT_EQ(col("timestamp"), "2023-11-14T22:13:30");
  EXPECT_DOUBLE_EQ(std::stod(col("duration")), 10.0);                  // s
  EXPECT_DOUBLE_EQ(std::stod(col("emissions")), 0.0000522);            // kg
  EXPECT_DOUBLE_EQ(std::stod(col("emissions_rate")), 0.00000522);      // kg/s
  EXPECT_DOUBLE_EQ(std::stod(col("cpu_power")), 36.0);                 // W
  EXPECT_DOUBLE_EQ(std::stod(col("ram_power")), 3.6);                  // W
  EXPECT_DOUBLE_EQ(std::stod(col("cpu_energy")), 360.0 / 3.6e6);       // kWh
  EXPECT_DOUBLE_EQ(std::stod(col("energy_consumed")), 396.0 / 3.6e6);  // kWh, process share
  EXPECT_EQ(col("country_iso_code"), "FRA");
  EXPECT_EQ(col("cpu_model"), info.cpu_model);  // comma and quotes survive
  EXPECT_EQ(col("tracking_mode"), "process");
  EXPECT_EQ(col("on_cloud"), "N");
  EXPECT_DOUBLE_EQ(std::stod(col("pue")), 1.2);
  EXPECT_DOUBLE_EQ(std::stod(col("ram_total_size")), 23.5);  // GB
  // CodeCarbon 3's additions, from what was measured.
  EXPECT_DOUBLE_EQ(std::stod(col("water_consumed")), 396.0 / 3.6e6 * 1.8);  // L = kWh x WUE
  EXPECT_DOUBLE_EQ(std::stod(col("wue")), 1.8);
  EXPECT_DOUBLE_EQ(std::stod(col("cpu_utilization_percent")), 87.5);
  EXPECT_EQ(col("gpu_utilization_percent"), "");  // no GPU utilisation was read
  EXPECT_DOUBLE_EQ(std::stod(col("ram_utilization_percent")), 25.0);
  EXPECT_DOUBLE_EQ(std::stod(col("ram_used_gb")), 6.0);
  EXPECT_EQ(col("codecarbon_version"), "");
  EXPECT_EQ(col("python_version"), "");
}

TEST(EmissionsCsv, MachineModeWritesTheMachineOnlyWhereThisTrackerReportsIt) {
  TempDir t;
  auto path = t / "emissions.csv";
  PhaseResult leader = sample_phase();
  PhaseResult other = sample_phase();
  other.machine_reported = false;
  RunInfo info = sample_info();
  info.tracking_mode = "machine";
  info.python_version = "3.11.2";
  std::vector<PhaseResult> phases = {leader, other};
  append_emissions_csv(path, phases, info);
  auto rows = read_csv(read_file_text(path));
  ASSERT_EQ(rows.size(), 3u);
  auto col = [&](std::size_t row, const std::string& name) {
    for (std::size_t i = 0; i < rows[0].size(); ++i)
      if (rows[0][i] == name) return rows[row][i];
    ADD_FAILURE() << "no column " << name;
    return std::string();
  };
  EXPECT_EQ(col(1, "tracking_mode"), "machine");
  EXPECT_DOUBLE_EQ(std::stod(col(1, "cpu_energy")), 720.0 / 3.6e6);
  EXPECT_DOUBLE_EQ(std::stod(col(1, "emissions")), 0.0001);
  EXPECT_EQ(col(1, "python_version"), "3.11.2");
  // Another tracker reports this machine: the row is the process share, labelled so.
  EXPECT_EQ(col(2, "tracking_mode"), "process");
  EXPECT_DOUBLE_EQ(std::stod(col(2, "cpu_energy")), 360.0 / 3.6e6);
  EXPECT_DOUBLE_EQ(std::stod(col(2, "emissions")), 0.0000522);
}

TEST(EmissionsCsv, GpuUtilisationAndPythonVersionWhenKnown) {
  PhaseResult p = sample_phase();
  p.gpu_utilization = 0.42;
  RunInfo info = sample_info();
  info.python_version = "3.11.2";
  const auto row = read_csv(emissions_csv_row(p, info) + "\n").at(0);
  auto at = [&](const std::string& name) {
    const auto& c = codecarbon_columns();
    return row[static_cast<std::size_t>(std::find(c.begin(), c.end(), name) - c.begin())];
  };
  EXPECT_DOUBLE_EQ(std::stod(at("gpu_utilization_percent")), 42.0);
  EXPECT_EQ(at("python_version"), "3.11.2");
}

TEST(EmissionsCsv, ForeignHeaderIsMovedAsideLikeCodeCarbon) {
  TempDir t;
  auto path = t / "emissions.csv";
  write_text(path, "a,b\n1,2\n");
  PhaseResult p = sample_phase();
  std::string warning = append_emissions_csv(path, std::span(&p, 1), sample_info());
  EXPECT_NE(warning.find("old file moved to " + (t / "emissions.csv.bak").string()),
            std::string::npos)
      << warning;
  EXPECT_EQ(read_file_text(t / "emissions.csv.bak"), "a,b\n1,2\n");
  EXPECT_EQ(read_csv(read_file_text(path)).size(), 2u);
  // A file of the 2.x columns (what Verdant wrote before) is another header too; an existing
  // backup is kept and the next name taken, as CodeCarbon's backup() does.
  write_text(path, std::string(kCodeCarbon2Header) + "\nold,row\n");
  warning = append_emissions_csv(path, std::span(&p, 1), sample_info());
  EXPECT_NE(warning.find("emissions.csv_0.bak"), std::string::npos) << warning;
  EXPECT_EQ(read_file_text(t / "emissions.csv.bak"), "a,b\n1,2\n");
  EXPECT_EQ(read_file_text(t / "emissions.csv_0.bak").rfind(kCodeCarbon2Header, 0), 0u);
}

TEST(EmissionsCsv, SameColumnsInAnotherOrderAreAppendedInThatOrder) {
  TempDir t;
  auto path = t / "emissions.csv";
  // The columns as a set, reversed: CodeCarbon compares sorted header sets.
  std::vector<std::string> reversed(codecarbon_columns().rbegin(), codecarbon_columns().rend());
  std::string header;
  for (auto& c : reversed) header += (header.empty() ? "" : ",") + c;
  write_text(path, header + "\n");
  PhaseResult p = sample_phase();
  EXPECT_EQ(append_emissions_csv(path, std::span(&p, 1), sample_info()), "");
  auto rows = read_csv(read_file_text(path));
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], reversed);
  EXPECT_EQ(rows[1].front(), "1.8");  // wue, now first
  EXPECT_EQ(rows[1].back(), "2023-11-14T22:13:30");
  // An empty file is a new one.
  write_text(t / "empty.csv", "");
  EXPECT_EQ(append_emissions_csv(t / "empty.csv", std::span(&p, 1), sample_info()), "");
  EXPECT_EQ(read_file_text(t / "empty.csv").rfind(kCodeCarbon32Header, 0), 0u);
}

// pandas, as CodeCarbon's FileOutput uses it, reads what Verdant writes, writes it back
// (df.to_csv), and Verdant appends to that file without moving it aside.
TEST(EmissionsCsv, RoundTripThroughPandas) {
  TempDir t;
  if (std::system("/usr/bin/python3 -c 'import pandas' > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "python3-pandas is not installed (scripts/setup installs it)";
  auto path = t / "emissions.csv";
  PhaseResult p = sample_phase();
  RunInfo info = sample_info();
  ASSERT_EQ(append_emissions_csv(path, std::span(&p, 1), info), "");
  const std::string script = std::string(VERDANT_SOURCE_DIR) + "/tests/energy/pandas_round_trip.py";
  std::string columns;
  for (auto& c : codecarbon_columns()) columns += (columns.empty() ? "" : ",") + c;
  const std::string cmd = "/usr/bin/python3 '" + script + "' '" + path.string() + "' '" + columns +
                          "' > '" + (t / "py.txt").string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << read_file_text(t / "py.txt");
  // pandas rewrote the file; the header set is unchanged, so Verdant appends to it.
  EXPECT_EQ(append_emissions_csv(path, std::span(&p, 1), info), "");
  auto rows = read_csv(read_file_text(path));
  ASSERT_EQ(rows.size(), 3u);
  for (const auto& r : rows) EXPECT_EQ(r.size(), 38u);
  const std::string again = "/usr/bin/python3 -c \"import pandas as pd; df = pd.read_csv('" +
                            path.string() + "'); assert len(df) == 2 and len(df.columns) == 38; " +
                            "assert abs(df.cpu_power[1] - 36.0) < 1e-9\" > '" +
                            (t / "py2.txt").string() + "' 2>&1";
  EXPECT_EQ(std::system(again.c_str()), 0) << read_file_text(t / "py2.txt");
}

TEST(EnergyJsonl, OneRecordPerPhaseWithSources) {
  TempDir t;
  auto path = t / "energy.jsonl";
  std::vector<PhaseResult> phases = {sample_phase(), sample_phase()};
  phases[1].name = "total";
  phases[1].machine_reported = false;
  phases[1].cost.reset();
  append_energy_jsonl(path, phases, sample_info());
  std::istringstream lines(read_file_text(path));
  std::string line;
  std::vector<nlohmann::json> records;
  while (std::getline(lines, line)) records.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(records.size(), 2u);
  const auto& r = records[0];
  EXPECT_EQ(r["phase"], "train");
  EXPECT_DOUBLE_EQ(r["process_joules"]["cpu"].get<double>(), 360.0);
  EXPECT_DOUBLE_EQ(r["machine_joules"]["cpu"].get<double>(), 720.0);
  EXPECT_EQ(r["sources"]["cpu"]["kind"], "estimated");
  EXPECT_EQ(r["sources"]["gpu"]["kind"], "none");
  EXPECT_EQ(r["sources"]["cpu"]["source"], "estimated (vCPU model, test)");
  EXPECT_DOUBLE_EQ(r["process_kwh"].get<double>(), 396.0 / 3.6e6);
  EXPECT_EQ(r["currency"], "EUR");
  EXPECT_TRUE(records[1]["machine_joules"].is_null());
  EXPECT_TRUE(records[1]["cost"].is_null());
}

TEST(Prometheus, TextExposition) {
  PhaseResult p = sample_phase();
  p.name = "epoch \"1\"";
  std::string text = prometheus_text(std::span(&p, 1), sample_info());
  EXPECT_NE(text.find("# TYPE verdant_energy_joules_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("verdant_energy_joules_total{run_id=\"11111111-2222-4333-8444-555555555555\","
                      "project=\"proj\",phase=\"epoch \\\"1\\\"\",domain=\"cpu\","
                      "source=\"estimated\",scope=\"process\"} 360\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("domain=\"cpu\",source=\"estimated\",scope=\"machine\"} 720\n"),
            std::string::npos);
  EXPECT_NE(text.find("# TYPE verdant_power_watts gauge\n"), std::string::npos);
  EXPECT_NE(text.find("scope=\"process\"} 36\n"), std::string::npos) << text;  // 360 J / 10 s
  EXPECT_NE(text.find("# TYPE verdant_emissions_grams_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("scope=\"process\"} 0.0522\n"), std::string::npos) << text;  // grams
  EXPECT_NE(text.find("verdant_cpu_utilization_ratio{"), std::string::npos);
  EXPECT_NE(text.find("verdant_energy_cost_total{"), std::string::npos);
  EXPECT_NE(text.find("currency=\"EUR\"} 3e-05\n"), std::string::npos) << text;
  // Every non-comment line is "name{labels} value"; every family has HELP and TYPE.
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# ", 0) == 0) continue;
    EXPECT_EQ(line.rfind("verdant_", 0), 0u) << line;
    EXPECT_NE(line.find("} "), std::string::npos) << line;
  }
  TempDir t;
  write_prometheus_textfile(t / "verdant.prom", text);
  EXPECT_EQ(read_file_text(t / "verdant.prom"), text);
}

// promtool (Debian's prometheus package) checks the exposition format and the naming
// conventions: base units, _total on counters, HELP on every family.
std::string promtool_check(const TempDir& t, const std::string& text) {
  write_text(t / "metrics.prom", text);
  const std::string cmd = "promtool check metrics < '" + (t / "metrics.prom").string() + "' > '" +
                          (t / "promtool.txt").string() + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  return rc == 0 ? "" : "promtool failed:\n" + read_file_text(t / "promtool.txt") + "\n" + text;
}

bool have_promtool() {
  return std::system("command -v promtool > /dev/null 2>&1") == 0;
}

TEST(Prometheus, TextfilePassesPromtool) {
  if (!have_promtool()) GTEST_SKIP() << "promtool is not installed (scripts/setup installs it)";
  TempDir t;
  std::vector<PhaseResult> phases = {sample_phase(), sample_phase()};
  phases[1].name = "total";
  phases[1].machine_reported = false;
  phases[1].cost.reset();
  EXPECT_EQ(promtool_check(t, prometheus_text(phases, sample_info())), "");
}

std::string http_get(std::uint16_t port, const std::string& target) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return "connect failed";
  }
  std::string req = "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n\r\n";
  ::send(fd, req.data(), req.size(), 0);
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = ::recv(fd, buf, sizeof buf, 0)) > 0) resp.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return resp;
}

TEST(Prometheus, MetricsEndpointBodyPassesPromtool) {
  if (!have_promtool()) GTEST_SKIP() << "promtool is not installed (scripts/setup installs it)";
  PhaseResult live = sample_phase();
  live.name = "live";
  MetricsServer server([&] { return prometheus_text(std::span(&live, 1), sample_info()); });
  const std::string r = http_get(server.port(), "/metrics");
  const auto body = r.find("\r\n\r\n");
  ASSERT_NE(body, std::string::npos) << r;
  TempDir t;
  EXPECT_EQ(promtool_check(t, r.substr(body + 4)), "");
}

TEST(Prometheus, MetricsEndpointOnLoopback) {
  int calls = 0;
  MetricsServer server([&] { return "verdant_up " + std::to_string(++calls) + "\n"; });
  ASSERT_NE(server.port(), 0);
  std::string r = http_get(server.port(), "/metrics");
  EXPECT_EQ(r.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(r.find("\r\n\r\nverdant_up 1\n"), std::string::npos) << r;
  EXPECT_NE(http_get(server.port(), "/metrics").find("verdant_up 2\n"), std::string::npos);
  EXPECT_EQ(http_get(server.port(), "/other").rfind("HTTP/1.1 404", 0), 0u);
}

}  // namespace
}  // namespace verdant::energy
