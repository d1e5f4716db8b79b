// emissions.csv (CodeCarbon's schema), energy.jsonl, Prometheus text and the /metrics endpoint.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "energy_test_util.hpp"
#include "verdant/core/io.hpp"
#include "verdant/energy/sinks.hpp"

namespace verdant::energy {
namespace {

using testing::TempDir;
using testing::write_text;

// The header CodeCarbon 2.x writes (EmissionsData in codecarbon/output_methods/
// emissions_data.py; the same list the project brief and CodeCarbon's output docs give).
const char* kPublishedHeader =
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
  p.source = {"estimated (TDP 85 W, x utilisation)", "estimated (RAM)", "none"};
  p.emissions_kg = 0.0000522;
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
  i.carbon_description = "country FRA";
  i.pue_description = "PUE 1.2 (flag)";
  i.currency = "EUR";
  i.machine_leader = true;
  return i;
}

TEST(EmissionsCsv, HeaderIsCodeCarbonsPublishedList) {
  std::string joined;
  for (auto& c : codecarbon_columns()) joined += (joined.empty() ? "" : ",") + c;
  EXPECT_EQ(joined, kPublishedHeader);
  EXPECT_EQ(codecarbon_columns().size(), 32u);
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
  for (auto& r : rows) ASSERT_EQ(r.size(), 32u);
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

TEST(EmissionsCsv, ForeignHeaderIsBackedUpLikeCodeCarbon) {
  TempDir t;
  auto path = t / "emissions.csv";
  write_text(path, "a,b\n1,2\n");
  PhaseResult p = sample_phase();
  std::string warning = append_emissions_csv(path, std::span(&p, 1), sample_info());
  EXPECT_NE(warning.find("old file kept as"), std::string::npos) << warning;
  EXPECT_EQ(read_file_text(t / "emissions.csv.bak"), "a,b\n1,2\n");
  EXPECT_EQ(read_csv(read_file_text(path)).size(), 2u);
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
  EXPECT_EQ(r["sources"]["cpu"]["source"], "estimated (TDP 85 W, x utilisation)");
  EXPECT_DOUBLE_EQ(r["process_kwh"].get<double>(), 396.0 / 3.6e6);
  EXPECT_EQ(r["currency"], "EUR");
  EXPECT_TRUE(records[1]["machine_joules"].is_null());
  EXPECT_TRUE(records[1]["cost"].is_null());
}

TEST(Prometheus, TextExposition) {
  PhaseResult p = sample_phase();
  p.name = "epoch \"1\"";
  std::string text = prometheus_text(std::span(&p, 1), sample_info());
  EXPECT_NE(text.find("# TYPE verdant_energy_joules gauge\n"), std::string::npos);
  EXPECT_NE(text.find("verdant_energy_joules{run_id=\"11111111-2222-4333-8444-555555555555\","
                      "project=\"proj\",phase=\"epoch \\\"1\\\"\",domain=\"cpu\","
                      "source=\"estimated\",scope=\"process\"} 360\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("scope=\"machine\"} 720\n"), std::string::npos);
  EXPECT_NE(text.find("verdant_energy_cost{"), std::string::npos);
  EXPECT_NE(text.find("currency=\"EUR\"} 3e-05\n"), std::string::npos) << text;
  // Every non-comment line is "name{labels} value".
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
