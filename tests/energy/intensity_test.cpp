// Intensity series: formats, the gap rule (on the real EIA files too), timestamps, bad input.
#include "verdant/energy/intensity.hpp"

#include <gtest/gtest.h>

#include "support/error_helpers.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "verdant/core/error.hpp"

namespace fs = std::filesystem;
using namespace verdant::energy;
using namespace std::chrono;

namespace {

const fs::path kGridDir = fs::path(VERDANT_SOURCE_DIR) / "data/carbon/grid-hourly-2022";

UtcSeconds ts(const char* text) {
  auto t = parse_utc_timestamp(text);
  EXPECT_TRUE(t.has_value()) << text;
  return t.value_or(UtcSeconds{});
}

using verdant::test_support::contains;
using verdant::test_support::error_of;

// Reads avg_CI of a raw EIA row by timestamp prefix, independently of the parser.
double raw_eia_value(const fs::path& file, const std::string& stamp) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(stamp, 0) == 0) return std::stod(line.substr(line.rfind(',') + 1));
  ADD_FAILURE() << stamp << " not in " << file;
  return 0;
}

}  // namespace

TEST(Timestamps, ParsesTheFormatsWeMeet) {
  auto base = sys_days(year(2022) / January / day(1));
  EXPECT_EQ(ts("2022-01-01 00:00:00+00:00"), UtcSeconds(base));
  EXPECT_EQ(ts("2022-01-01T00:00:00Z"), UtcSeconds(base));
  EXPECT_EQ(ts("2022-01-01"), UtcSeconds(base));
  EXPECT_EQ(ts("2022-01-01T01:30"), UtcSeconds(base) + minutes(90));
  EXPECT_EQ(ts("2022-01-01T02:00:00+02:00"), UtcSeconds(base));
  EXPECT_EQ(ts("2021-12-31T23:00:00.500-01:00"), UtcSeconds(base));
  EXPECT_FALSE(parse_utc_timestamp("2022-13-01T00:00:00Z"));
  EXPECT_FALSE(parse_utc_timestamp("2022-02-30"));
  EXPECT_FALSE(parse_utc_timestamp("yesterday"));
  EXPECT_FALSE(parse_utc_timestamp("2022-01-01T00:00:00Zjunk"));
  EXPECT_EQ(format_utc_timestamp(ts("2024-02-29T13:05:09Z")), "2024-02-29T13:05:09Z");
}

TEST(PlainCsv, ReadsValuesStepAndName) {
  auto s = parse_intensity_series(
      "timestamp,gco2eq_per_kwh\n2022-03-01T00:00:00Z,100\n2022-03-01T01:00:00Z,200.5\n",
      "/tmp/zone-a.csv");
  EXPECT_EQ(s.name(), "zone-a");
  EXPECT_EQ(s.step(), hours(1));
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s.start(), ts("2022-03-01T00:00:00Z"));
  EXPECT_EQ(s.end(), ts("2022-03-01T02:00:00Z"));
  EXPECT_DOUBLE_EQ(s.at(ts("2022-03-01T01:59:59Z")), 200.5);
  EXPECT_DOUBLE_EQ(s.mean_over(ts("2022-03-01T00:30:00Z"), ts("2022-03-01T01:30:00Z")), 150.25);
}

TEST(PlainCsv, HeaderlessAndFinerThanHourly) {
  auto s = parse_intensity_series(
      "2022-03-01T00:00:00Z,10\n2022-03-01T00:15:00Z,20\n2022-03-01T00:30:00Z,30\n", "x.csv");
  EXPECT_EQ(s.step(), minutes(15));
  ASSERT_EQ(s.size(), 3u);
  EXPECT_DOUBLE_EQ(s.value(2), 30);
}

TEST(GapRule, MissingHoursAndEmptyRowsAreInterpolatedUpToTheLimit) {
  // 01:00 is missing entirely, 02:00 is present but empty; 00:00=100, 03:00=400.
  auto s = parse_intensity_series(
      "timestamp,gco2eq_per_kwh\n2022-03-01T00:00Z,100\n2022-03-01T02:00Z,\n"
      "2022-03-01T03:00Z,400\n",
      "gaps.csv");
  ASSERT_EQ(s.size(), 4u);
  EXPECT_EQ(s.interpolated_count(), 2u);
  EXPECT_DOUBLE_EQ(s.value(1), 200);
  EXPECT_DOUBLE_EQ(s.value(2), 300);
}

TEST(GapRule, LongGapsAndEdgesStayUnknownNeverZero) {
  std::string text = "timestamp,gco2eq_per_kwh\n2022-03-01T00:00Z,\n2022-03-01T01:00Z,50\n";
  // 8 missing hours (02:00..09:00), then a value, then a trailing empty row.
  text += "2022-03-01T10:00Z,70\n2022-03-01T11:00Z,\n";
  auto s = parse_intensity_series(text, "long.csv");
  ASSERT_EQ(s.size(), 12u);
  EXPECT_EQ(s.interpolated_count(), 0u);
  EXPECT_EQ(s.unknown_count(), 10u);
  EXPECT_FALSE(s.known(0));
  EXPECT_TRUE(std::isnan(s.value(5)));
  auto msg = error_of([&] { s.at(ts("2022-03-01T05:00Z")); });
  EXPECT_TRUE(contains(msg, "long.csv")) << msg;
  EXPECT_TRUE(contains(msg, "2022-03-01T02:00:00Z to 2022-03-01T10:00:00Z")) << msg;
  error_of([&] { s.mean_over(ts("2022-03-01T01:00Z"), ts("2022-03-01T03:00Z")); });

  // With a 9-hour limit the inner gap is bridged; the edges still are not.
  SeriesOptions wide;
  wide.max_interpolated_gap = hours(9);
  auto w = parse_intensity_series(text, "long.csv", wide);
  EXPECT_EQ(w.interpolated_count(), 8u);
  EXPECT_NEAR(w.value(2), 50 + 20.0 / 9, 1e-12);
  EXPECT_EQ(w.unknown_count(), 2u);
}

TEST(EiaFiles, AllSevenZonesLoadAsFullYears) {
  auto zones = std::vector<std::string>{"US-AZPS", "US-CISO", "US-ERCO", "US-MISO",
                                        "US-PJM",  "US-SOCO", "US-WAAT"};
  for (const auto& z : zones) {
    auto s = load_intensity_series(kGridDir / (z + ".csv"));
    EXPECT_EQ(s.name(), z);
    EXPECT_EQ(s.step(), hours(1)) << z;
    EXPECT_EQ(s.size(), 8760u) << z;
    EXPECT_EQ(s.start(), ts("2022-01-01T00:00:00Z")) << z;
    EXPECT_GT(s.mean_known(), 10) << z;
  }
}

TEST(EiaFiles, EmptyTimestampHeaderOfWaat) {
  auto s = load_intensity_series(kGridDir / "US-WAAT.csv");
  EXPECT_NEAR(s.at(ts("2022-01-01T00:00:00Z")), 57.885814636943586, 1e-9);
  EXPECT_EQ(s.unknown_count(), 0u);
}

TEST(EiaFiles, CisoEmptyRowsAreInterpolated) {
  auto file = kGridDir / "US-CISO.csv";
  auto s = load_intensity_series(file);
  EXPECT_EQ(s.interpolated_count(), 3u);
  EXPECT_EQ(s.unknown_count(), 0u);
  double before = raw_eia_value(file, "2022-01-05 09:00:00");
  double after = raw_eia_value(file, "2022-01-05 11:00:00");
  EXPECT_DOUBLE_EQ(s.at(ts("2022-01-05T10:00:00Z")), (before + after) / 2);
}

TEST(EiaFiles, MisoRowsWithOnlyOneFuelAreGaps) {
  // Rows like "2022-06-09 20:00:00+00:00,,,,0.0,,,,," have no avg_CI: a 2-hour gap.
  auto file = kGridDir / "US-MISO.csv";
  auto s = load_intensity_series(file);
  EXPECT_EQ(s.interpolated_count(), 3u);
  double a = raw_eia_value(file, "2022-06-09 19:00:00");
  double b = raw_eia_value(file, "2022-06-09 22:00:00");
  EXPECT_NEAR(s.at(ts("2022-06-09T20:00:00Z")), a + (b - a) / 3, 1e-9);
  EXPECT_NEAR(s.at(ts("2022-06-09T21:00:00Z")), a + 2 * (b - a) / 3, 1e-9);
}

TEST(EiaFiles, PjmLongGapStaysUnknown) {
  auto s = load_intensity_series(kGridDir / "US-PJM.csv");
  // 22 consecutive empty rows on 2022-03-13/14 exceed the 6-hour limit; one lone empty row
  // on 2022-11-07 is interpolated.
  EXPECT_EQ(s.unknown_count(), 22u);
  EXPECT_EQ(s.interpolated_count(), 1u);
  EXPECT_TRUE(s.known(*s.index_of(ts("2022-11-07T05:00:00Z"))));
  EXPECT_FALSE(s.known(*s.index_of(ts("2022-03-13T07:00:00Z"))));
  EXPECT_FALSE(s.known(*s.index_of(ts("2022-03-14T04:00:00Z"))));
  EXPECT_TRUE(s.known(*s.index_of(ts("2022-03-14T05:00:00Z"))));
  auto msg = error_of([&] { s.at(ts("2022-03-13T12:00:00Z")); });
  EXPECT_TRUE(contains(msg, "US-PJM.csv")) << msg;
  // With a day-long limit the gap is bridged.
  SeriesOptions day;
  day.max_interpolated_gap = hours(24);
  EXPECT_EQ(load_intensity_series(kGridDir / "US-PJM.csv", day).unknown_count(), 0u);
}

TEST(ElectricityMaps, OlderExportHeaderLifecycleAndDirect) {
  const std::string text =
      "Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),"
      "Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,"
      "Data Source,Data Estimated,Data Estimation Method\n"
      "2022-01-01 00:00:00,France,France,FR,30.5,60.25,90.1,20.2,rte.fr,false,\n"
      "2022-01-01 01:00:00,France,France,FR,31.5,61.25,90.0,20.1,\"rte.fr, entsoe.eu\",true,"
      "ESTIMATED_TIME_SLICER_AVERAGE\n";
  auto lca = parse_intensity_series(text, "FR_2022_hourly.csv");
  EXPECT_EQ(lca.name(), "FR");
  EXPECT_DOUBLE_EQ(lca.value(1), 61.25);
  SeriesOptions direct;
  direct.factor = EmissionFactor::Direct;
  EXPECT_DOUBLE_EQ(parse_intensity_series(text, "FR_2022_hourly.csv", direct).value(0), 30.5);
}

TEST(ElectricityMaps, NewerExportHeaderAndZoneChoice) {
  const std::string text =
      "Datetime (UTC),Country,Zone name,Zone id,Carbon intensity gCO₂eq/kWh (direct),"
      "Carbon intensity gCO₂eq/kWh (Life cycle),Carbon-free energy percentage (CFE%),"
      "Renewable energy percentage (RE%),Data source,Data estimated,Data estimation method\n"
      "2023-05-01 00:00:00,Denmark,West Denmark,DK-DK1,100,150,50,50,x,false,\n"
      "2023-05-01 00:00:00,Denmark,East Denmark,DK-DK2,200,250,50,50,x,false,\n"
      "2023-05-01 01:00:00,Denmark,West Denmark,DK-DK1,110,160,50,50,x,false,\n"
      "2023-05-01 01:00:00,Denmark,East Denmark,DK-DK2,210,260,50,50,x,false,\n";
  auto msg = error_of([&] { parse_intensity_series(text, "dk.csv"); });
  EXPECT_TRUE(contains(msg, "DK-DK1, DK-DK2")) << msg;
  SeriesOptions pick;
  pick.location = "dk-dk2";
  auto s = parse_intensity_series(text, "dk.csv", pick);
  EXPECT_EQ(s.name(), "DK-DK2");
  EXPECT_DOUBLE_EQ(s.value(0), 250);
  EXPECT_DOUBLE_EQ(s.value(1), 260);
  pick.location = "West Denmark";
  EXPECT_DOUBLE_EQ(parse_intensity_series(text, "dk.csv", pick).value(1), 160);
}

TEST(CarbonAwareJson, EmissionsArrayWithDurations) {
  const std::string text = R"([
  {"location": "eastus", "time": "2022-06-01T00:00:00Z", "rating": 300.5, "duration": "01:00:00"},
  {"location": "eastus", "time": "2022-06-01T01:00:00Z", "rating": 280, "duration": "02:00:00"},
  {"location": "eastus", "time": "2022-06-01T03:00:00+00:00", "rating": 260, "duration": "01:00:00"}
])";
  auto s = parse_intensity_series(text, "emissions.json");
  EXPECT_EQ(s.name(), "eastus");
  EXPECT_EQ(s.step(), hours(1));
  ASSERT_EQ(s.size(), 4u);
  EXPECT_DOUBLE_EQ(s.value(2), 280);  // a 2-hour entry fills two slots
  EXPECT_DOUBLE_EQ(s.value(3), 260);
}

TEST(CarbonAwareJson, WrappedAndCapitalisedKeys) {
  const std::string text =
      R"({"Emissions": [{"Location": "westus", "Time": "2022-06-01T00:00:00Z", "Rating": 10,
      "Duration": "00:05:00"}, {"Location": "westus", "Time": "2022-06-01T00:05:00Z",
      "Rating": 20, "Duration": "00:05:00"}]})";
  auto s = parse_intensity_series(text, "data.txt");  // detected from content
  EXPECT_EQ(s.step(), minutes(5));
  EXPECT_DOUBLE_EQ(s.value(1), 20);
}

TEST(CarbonAwareJson, ErrorsNameFileAndLine) {
  auto msg = error_of([] {
    parse_intensity_series(
        "[\n{\"location\":\"a\",\"time\":\"2022-06-01T00:00:00Z\",\"rating\":1},\n"
        "{\"location\":\"a\",\"time\":\"2022-06-01T01:00:00Z\"}\n]",
        "e.json");
  });
  EXPECT_TRUE(contains(msg, "e.json:3:")) << msg;
  EXPECT_TRUE(contains(msg, "rating")) << msg;
  msg = error_of([] { parse_intensity_series("[\n{\"location\": \n", "broken.json"); });
  EXPECT_TRUE(contains(msg, "broken.json:")) << msg;
  EXPECT_TRUE(contains(msg, "invalid JSON")) << msg;
  msg = error_of([] {
    parse_intensity_series(
        R"([{"location":"a","time":"2022-06-01T00:00:00Z","rating":1},
            {"location":"b","time":"2022-06-01T00:00:00Z","rating":2}])",
        "two.json");
  });
  EXPECT_TRUE(contains(msg, "a, b")) << msg;
}

TEST(MalformedCsv, OneLineErrorsWithFileAndLine) {
  auto msg = error_of([] {
    parse_intensity_series("timestamp,gco2eq_per_kwh\n2022-01-01T00:00Z,1\n2022-01-01T01:00Z,abc\n",
                           "bad.csv");
  });
  EXPECT_TRUE(contains(msg, "bad.csv:3:")) << msg;
  EXPECT_TRUE(contains(msg, "'abc' is not a number")) << msg;
  msg = error_of([] {
    parse_intensity_series("timestamp,gco2eq_per_kwh\n2022-01-01T00:00Z,1,2\n", "wide.csv");
  });
  EXPECT_TRUE(contains(msg, "wide.csv:2: expected 2 fields")) << msg;
  msg = error_of(
      [] { parse_intensity_series("timestamp,gco2eq_per_kwh\nnot-a-date,1\n", "date.csv"); });
  EXPECT_TRUE(contains(msg, "date.csv:2:")) << msg;
  msg = error_of([] {
    parse_intensity_series("timestamp,gco2eq_per_kwh\n2022-01-01T00:00Z,1\n2022-01-01T00:00Z,2\n",
                           "dup.csv");
  });
  EXPECT_TRUE(contains(msg, "dup.csv:3: duplicate timestamp")) << msg;
  msg = error_of([] {
    parse_intensity_series(
        "timestamp,gco2eq_per_kwh\n2022-01-01T00:00Z,1\n2022-01-01T01:00Z,2\n"
        "2022-01-01T01:30Z,3\n2022-01-01T03:00Z,2\n2022-01-01T03:20Z,3\n",
        "grid.csv");
  });
  EXPECT_TRUE(contains(msg, "grid.csv:")) << msg;
  EXPECT_TRUE(contains(msg, "not on the series")) << msg;
  msg = error_of([] {
    parse_intensity_series("timestamp,gco2eq_per_kwh\n2022-01-01T00:00Z,-5\n", "neg.csv");
  });
  EXPECT_TRUE(contains(msg, "neg.csv:2:")) << msg;
  msg = error_of([] { parse_intensity_series("", "empty.csv"); });
  EXPECT_TRUE(contains(msg, "empty.csv")) << msg;
  msg = error_of([] { parse_intensity_series("timestamp,gco2eq_per_kwh\n", "noheader.csv"); });
  EXPECT_TRUE(contains(msg, "no data rows")) << msg;
  msg = error_of([] {
    parse_intensity_series("timestamp,WND,avg_CI\n2022-01-01 00:00:00+00:00,1,\"12\n", "quote.csv");
  });
  EXPECT_TRUE(contains(msg, "quote.csv:2: unterminated quote")) << msg;
  msg = error_of([] { load_intensity_series("/nonexistent/dir/zone.csv"); });
  EXPECT_TRUE(contains(msg, "/nonexistent/dir/zone.csv")) << msg;
}

TEST(MalformedCsv, TruncatedRealFile) {
  // A real file cut in the middle of its 11th row's timestamp: that row has too few fields.
  std::ifstream in(kGridDir / "US-CISO.csv");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t cut = 0;
  for (int row = 0; row < 11; ++row) cut = text.find('\n', cut) + 1;
  text.resize(cut + 12);
  auto msg = error_of([&] { parse_intensity_series(text, "US-CISO-truncated.csv"); });
  EXPECT_TRUE(contains(msg, "US-CISO-truncated.csv:")) << msg;
}

TEST(BundledZones, ListAndCaseInsensitiveLoadAndClosestNames) {
  auto zones = bundled_grid_zones();
  ASSERT_EQ(zones.size(), 7u);
  EXPECT_EQ(zones.front(), "US-AZPS");
  EXPECT_EQ(load_grid_zone("us-ciso").name(), "US-CISO");
  auto msg = error_of([] { load_grid_zone("US-CISOO"); });
  EXPECT_TRUE(contains(msg, "closest: US-CISO")) << msg;
}

TEST(BundledZones, AnythingThatLooksLikeAPathIsReadAsAFile) {
  EXPECT_EQ(load_zone_or_series("us-ciso").name(), "US-CISO");
  EXPECT_EQ(error_of([] { load_zone_or_series("/nonexistent/dir/zone.csv"); }),
            "grid_zone /nonexistent/dir/zone.csv: no such file");
  EXPECT_EQ(error_of([] { load_zone_or_series("no-such-zone-file.json", {}, "--zone"); }),
            "--zone no-such-zone-file.json: no such file");
  const fs::path dir =
      fs::temp_directory_path() / ("verdant-zone-dir-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  EXPECT_EQ(error_of([&] { load_zone_or_series(dir.string() + "/", {}, "--zone"); }),
            "--zone " + dir.string() + "/: is a directory, expected a series file");
  // A bare name that exists on disk is a path too, not a zone to correct.
  const std::string here = "verdant-zone-here-" + std::to_string(::getpid());
  fs::create_directories(here);
  EXPECT_EQ(error_of([&] { load_zone_or_series(here); }),
            "grid_zone " + here + ": is a directory, expected a series file");
  fs::remove(here);
  fs::remove(dir);
  EXPECT_TRUE(contains(error_of([] { load_zone_or_series("US-CISOO"); }), "closest: US-CISO"));
}

TEST(MalformedSeries, ImplausibleIntensityNamesFileAndLineInEveryFormat) {
  EXPECT_EQ(error_of([] {
              parse_intensity_series(
                  "timestamp,gco2eq_per_kwh\n2022-01-01T00:00Z,100\n2022-01-01T01:00Z,1e308\n",
                  "plain.csv");
            }),
            "plain.csv:3: column 'gco2eq_per_kwh': intensity 1e308 is above 5000 gCO2eq/kWh (the "
            "dirtiest grids average about 1200)");
  EXPECT_TRUE(contains(error_of([] {
                         parse_intensity_series(
                             ",WND,SUN,WAT,OIL,NG,COL,NUC,OTH,avg_CI\n"
                             "2022-01-01 00:00:00+00:00,1,1,1,1,1,1,1,1,5000.5\n",
                             "US-XXXX.csv");
                       }),
                       "US-XXXX.csv:2: column 'avg_CI': intensity 5000.5 is above 5000"));
  EXPECT_TRUE(contains(error_of([] {
                         parse_intensity_series(
                             "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (LCA)\n"
                             "2022-01-01 00:00:00,FR,60\n2022-01-01 01:00:00,FR,1e308\n",
                             "FR.csv");
                       }),
                       "FR.csv:3: column 'Carbon Intensity gCO₂eq/kWh (LCA)': intensity 1e308"));
  EXPECT_TRUE(contains(error_of([] {
                         parse_intensity_series(
                             "[\n{\"time\": \"2022-06-01T00:00:00Z\", \"rating\": 1},\n"
                             "{\"time\": \"2022-06-01T01:00:00Z\", \"rating\": 1e308}\n]",
                             "e.json");
                       }),
                       "e.json:3: element 1: rating: intensity 1e+308 is above 5000"));
  EXPECT_EQ(error_of([] {
              parse_intensity_series(
                  "[\n{\"time\": \"2022-06-01T00:00:00Z\", \"rating\": 1},\n"
                  "{\"time\": \"2022-06-01T01:00:00Z\", \"rating\": 1e400}\n]",
                  "big.json");
            }),
            "big.json:3: number 1e400 is out of range");
  // The edges themselves are allowed.
  const auto s = parse_intensity_series(
      "timestamp,gco2eq_per_kwh\n2022-01-01T00:00Z,0\n2022-01-01T01:00Z,5000\n", "edges.csv");
  EXPECT_DOUBLE_EQ(s.mean_known(), 2500);
}
