// Carbon tables, location resolution, PUE, and hour-by-hour emissions with hand-checked numbers.
#include "verdant/energy/carbon.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "support/error_helpers.hpp"
#include "verdant/core/error.hpp"
#include "verdant/energy/data_paths.hpp"

namespace fs = std::filesystem;
using namespace verdant::energy;
using namespace std::chrono;

namespace {

UtcSeconds ts(const char* text) {
  return parse_utc_timestamp(text).value();
}
UtcTime tp(const char* text) {
  return UtcTime(ts(text));
}

using verdant::test_support::contains;
using verdant::test_support::error_of;

// Hourly series 100, 200, 400 from 2022-03-01T00:00Z.
IntensitySeries three_hours() {
  return IntensitySeries("test", "test.csv", ts("2022-03-01T00:00:00Z"), hours(1),
                         {100.0, 200.0, 400.0});
}

}  // namespace

TEST(DataDir, EnvironmentOverrideAndBuildTree) {
  unsetenv("VERDANT_DATA_DIR");
  EXPECT_TRUE(fs::exists(data_dir() / "carbon" / "tables" / "country_energy_mix_2023.json"));
  auto tmp = fs::temp_directory_path() / ("verdant-data-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  setenv("VERDANT_DATA_DIR", tmp.c_str(), 1);
  EXPECT_EQ(data_dir(), tmp);
  EXPECT_EQ(carbon_data_dir(), tmp / "carbon");
  setenv("VERDANT_DATA_DIR", (tmp / "missing").c_str(), 1);
  auto msg = error_of([] { data_dir(); });
  EXPECT_TRUE(contains(msg, "VERDANT_DATA_DIR")) << msg;
  unsetenv("VERDANT_DATA_DIR");
  fs::remove_all(tmp);
}

TEST(Countries, TableAndLookups) {
  EXPECT_EQ(country_table().size(), 213u);
  EXPECT_DOUBLE_EQ(find_country("FRA").gco2_per_kwh, 56.039);
  EXPECT_EQ(find_country("france").iso3, "FRA");
  EXPECT_EQ(find_country("deu").name, "Germany");
  EXPECT_DOUBLE_EQ(find_country("IND").gco2_per_kwh, 713.441);
  auto msg = error_of([] { find_country("Frnace"); });
  EXPECT_TRUE(contains(msg, "FRA (France)")) << msg;
  msg = error_of([] { find_country("NORR"); });
  EXPECT_TRUE(contains(msg, "NOR (Norway)")) << msg;
}

TEST(CloudRegions, TableLookupsPueAndClosest) {
  const auto& regions = cloud_regions();
  EXPECT_GT(regions.size(), 80u);
  const auto& aws = find_cloud_region("aws:us-east-1");
  EXPECT_EQ(aws.provider, "aws");
  EXPECT_FALSE(aws.pue.has_value());
  const auto& gcp = find_cloud_region("GCP:us-east4");
  ASSERT_TRUE(gcp.pue.has_value());
  EXPECT_DOUBLE_EQ(*gcp.pue, 1.1);
  EXPECT_EQ(gcp.source, "gcp_regions.csv");  // newer GCP figure replaces the older one
  EXPECT_NO_THROW(find_cloud_region("azure:westeurope"));
  EXPECT_NO_THROW(find_cloud_region("gcp:africa-south1"));  // only in gcp_regions.csv
  auto msg = error_of([] { find_cloud_region("aws:us-est-1"); });
  EXPECT_TRUE(contains(msg, "aws:us-east-1")) << msg;
  msg = error_of([] { find_cloud_region("us-east-1"); });
  EXPECT_TRUE(contains(msg, "provider:region")) << msg;
}

TEST(ClosestNames, RanksByEditDistance) {
  std::vector<std::string> names{"US-CISO", "US-ERCO", "US-MISO", "US-PJM"};
  auto close = closest_names("us-miso2", names, 2);
  ASSERT_EQ(close.size(), 2u);
  EXPECT_EQ(close[0], "US-MISO");
  EXPECT_EQ(closest_names("x", names, 10).size(), 4u);
}

TEST(Resolve, DefaultIsTheWorldAverageAndSaysSo) {
  auto c = resolve_carbon_intensity({});
  EXPECT_TRUE(c.is_default());
  EXPECT_FALSE(c.is_time_series());
  EXPECT_DOUBLE_EQ(c.mean_gco2_per_kwh(), 475.0);
  EXPECT_TRUE(contains(c.description(), "world average 475")) << c.description();
  EXPECT_DOUBLE_EQ(c.pue(), 1.0);
  EXPECT_EQ(c.pue_description(), "PUE 1 (default)");
}

TEST(Resolve, CountryCloudZoneAndPue) {
  LocationRequest country;
  country.country = "France";
  auto fr = resolve_carbon_intensity(country);
  EXPECT_FALSE(fr.is_default());
  EXPECT_DOUBLE_EQ(fr.mean_gco2_per_kwh(), 56.039);
  EXPECT_TRUE(contains(fr.description(), "FRA")) << fr.description();

  LocationRequest cloud;
  cloud.cloud = "gcp:us-east4";
  auto g = resolve_carbon_intensity(cloud);
  EXPECT_DOUBLE_EQ(g.pue(), 1.1);
  EXPECT_TRUE(contains(g.pue_description(), "gcp:us-east4")) << g.pue_description();
  cloud.pue = 1.5;
  EXPECT_DOUBLE_EQ(resolve_carbon_intensity(cloud).pue(), 1.5);
  cloud.pue = 0.8;
  EXPECT_THROW(resolve_carbon_intensity(cloud), verdant::UsageError);

  LocationRequest zone;
  zone.grid_zone = "US-PJM";
  auto pjm = resolve_carbon_intensity(zone);
  ASSERT_TRUE(pjm.is_time_series());
  EXPECT_TRUE(contains(pjm.description(), "22 unknown")) << pjm.description();
  zone.grid_zone = "US-PJN";
  auto msg = error_of([&] { resolve_carbon_intensity(zone); });
  EXPECT_TRUE(contains(msg, "US-PJM")) << msg;

  LocationRequest both;
  both.country = "FRA";
  both.cloud = "aws:us-east-1";
  EXPECT_THROW(resolve_carbon_intensity(both), verdant::UsageError);
}

TEST(Resolve, PueMustBeAFiniteNumberOfAtLeastOne) {
  EXPECT_NO_THROW(validate_pue(1.0));
  EXPECT_NO_THROW(validate_pue(1.58));
  EXPECT_EQ(error_of([] { validate_pue(0.5); }), "PUE must be a number >= 1.0, got 0.5");
  EXPECT_EQ(error_of([] { validate_pue(std::nan("")); }), "PUE must be a number >= 1.0, got nan");
  EXPECT_EQ(error_of([] { validate_pue(HUGE_VAL); }), "PUE must be a number >= 1.0, got inf");
  EXPECT_THROW(validate_pue(0), verdant::UsageError);
}

TEST(Resolve, SeriesFileGivenAsGridZonePath) {
  auto path = fs::temp_directory_path() / ("verdant-series-" + std::to_string(::getpid()) + ".csv");
  std::ofstream(path) << "timestamp,gco2eq_per_kwh\n2022-03-01T00:00Z,100\n2022-03-01T01:00Z,300\n";
  LocationRequest req;
  req.grid_zone = path.string();
  auto c = resolve_carbon_intensity(req);
  ASSERT_TRUE(c.is_time_series());
  EXPECT_DOUBLE_EQ(c.mean_gco2_per_kwh(), 200);
  fs::remove(path);
  req.grid_zone = path.string();  // gone now: a missing file, not an unknown zone
  EXPECT_EQ(error_of([&] { resolve_carbon_intensity(req); }),
            "grid_zone " + path.string() + ": no such file");
}

TEST(Emissions, ConstantIntensityAndPue) {
  auto c = CarbonIntensity::constant(475, "x", 1.5);
  EXPECT_DOUBLE_EQ(c.grams_for_kwh(1.0), 712.5);
  EnergyInterval one_kwh{tp("2022-03-01T00:00:00Z"), tp("2022-03-01T05:00:00Z"), kJoulesPerKwh};
  EXPECT_DOUBLE_EQ(c.grams({&one_kwh, 1}), 712.5);
}

TEST(Emissions, SplitsIntervalsAtHourBoundaries) {
  auto c = CarbonIntensity::from_series(three_hours(), "test");
  // 2 kWh evenly over 00:30..02:30: 0.5 kWh at 100, 1 kWh at 200, 0.5 kWh at 400 = 450 g,
  // not 2 kWh x the 3-hour mean (466.7 g).
  EnergyInterval iv{tp("2022-03-01T00:30:00Z"), tp("2022-03-01T02:30:00Z"), 2 * kJoulesPerKwh};
  EXPECT_NEAR(c.grams({&iv, 1}), 450.0, 1e-9);
  // Several intervals add up; PUE scales.
  std::vector<EnergyInterval> ivs{
      {tp("2022-03-01T00:00:00Z"), tp("2022-03-01T01:00:00Z"), kJoulesPerKwh},       // 100
      {tp("2022-03-01T02:45:00Z"), tp("2022-03-01T03:00:00Z"), kJoulesPerKwh / 2}};  // 200
  EXPECT_NEAR(c.grams(ivs), 300.0, 1e-9);
  c.set_pue(1.2, "given");
  EXPECT_NEAR(c.grams(ivs), 360.0, 1e-9);
  // Zero-length interval: charged at that instant's intensity.
  EnergyInterval instant{tp("2022-03-01T01:10:00Z"), tp("2022-03-01T01:10:00Z"), kJoulesPerKwh};
  EXPECT_NEAR(c.grams({&instant, 1}), 240.0, 1e-9);
  // Sub-second precision is kept.
  EnergyInterval tiny{tp("2022-03-01T00:59:59Z"), tp("2022-03-01T01:00:01Z"), kJoulesPerKwh};
  EXPECT_NEAR(c.grams({&tiny, 1}), 1.2 * (50 + 100), 1e-9);
}

TEST(Emissions, OutsideTheSeriesOrInAGapIsAnError) {
  auto c = CarbonIntensity::from_series(three_hours(), "test");
  EnergyInterval late{tp("2022-03-01T02:30:00Z"), tp("2022-03-01T03:30:00Z"), 1000};
  auto msg = error_of([&] { c.grams({&late, 1}); });
  EXPECT_TRUE(contains(msg, "test.csv")) << msg;
  IntensitySeries gappy("g", "gappy.csv", ts("2022-03-01T00:00:00Z"), hours(1),
                        {100.0, std::nan(""), 300.0});
  auto g = CarbonIntensity::from_series(gappy, "g");
  EnergyInterval through{tp("2022-03-01T00:30:00Z"), tp("2022-03-01T01:30:00Z"), 1000};
  msg = error_of([&] { g.grams({&through, 1}); });
  EXPECT_TRUE(contains(msg, "gappy.csv")) << msg;
  EXPECT_THROW(c.grams(std::vector<EnergyInterval>{
                   {tp("2022-03-01T01:00:00Z"), tp("2022-03-01T00:00:00Z"), 1}}),
               verdant::Error);
}

TEST(Emissions, BundledYearIsReplayedAsATypicalYear) {
  LocationRequest req;
  req.grid_zone = "US-CISO";
  auto c = resolve_carbon_intensity(req);
  ASSERT_TRUE(c.typical_year());
  EXPECT_TRUE(contains(c.description(), "typical year")) << c.description();
  EnergyInterval in_2022{tp("2022-07-04T10:20:00Z"), tp("2022-07-04T13:50:00Z"), 5e6};
  EnergyInterval in_2026{tp("2026-07-04T10:20:00Z"), tp("2026-07-04T13:50:00Z"), 5e6};
  EXPECT_DOUBLE_EQ(c.grams({&in_2026, 1}), c.grams({&in_2022, 1}));
  // Over New Year the interval wraps to the start of the same year's series.
  EnergyInterval new_year{tp("2025-12-31T23:30:00Z"), tp("2026-01-01T00:30:00Z"), 2e6};
  double expected =
      1e6 / kJoulesPerKwh *
      (c.series()->at(ts("2022-12-31T23:00:00Z")) + c.series()->at(ts("2022-01-01T00:00:00Z")));
  EXPECT_NEAR(c.grams({&new_year, 1}), expected, 1e-9);
  // Leap day maps to 28 February.
  EnergyInterval leap{tp("2028-02-29T12:00:00Z"), tp("2028-02-29T13:00:00Z"), kJoulesPerKwh};
  EXPECT_DOUBLE_EQ(c.grams({&leap, 1}), c.series()->at(ts("2022-02-28T12:00:00Z")));
  req.typical_year = false;
  auto strict = resolve_carbon_intensity(req);
  EXPECT_THROW(strict.grams({&in_2026, 1}), verdant::Error);
}
