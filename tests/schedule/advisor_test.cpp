// Region advisor: ranking by energy x PUE x intensity, prices, bad input.
#include "verdant/schedule/advisor.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "verdant/core/error.hpp"

using namespace verdant;
using namespace verdant::schedule;

TEST(Advisor, RanksByEnergyTimesPueTimesIntensity) {
  AdvisorOptions o;
  o.energy_kwh = 10;
  auto all = advise_regions(o);
  ASSERT_EQ(all.size(), energy::cloud_regions().size());
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LE(all[i - 1].grams, all[i].grams);
  for (const auto& a : all) {
    const auto& r = energy::find_cloud_region(a.key);
    EXPECT_DOUBLE_EQ(a.grams, 10 * r.pue.value_or(1.0) * r.gco2_per_kwh) << a.key;
    EXPECT_EQ(a.pue_known, r.pue.has_value());
    EXPECT_FALSE(a.cost);
  }
}

TEST(Advisor, ProviderFilterDefaultPueAndPrices) {
  AdvisorOptions o;
  o.energy_kwh = 2;
  o.provider = "GCP";
  o.default_pue = 1.2;
  o.price_per_kwh = 0.10;
  o.region_prices = {{"gcp:us-east4", 0.05}};
  o.top = 5;
  auto top = advise_regions(o);
  ASSERT_EQ(top.size(), 5u);
  for (const auto& a : top) EXPECT_EQ(a.key.rfind("gcp:", 0), 0u);
  o.top = 0;
  for (const auto& a : advise_regions(o)) {
    ASSERT_TRUE(a.cost);
    if (a.key == "gcp:us-east4") {
      EXPECT_DOUBLE_EQ(a.pue, 1.1);  // table value wins over the default
      EXPECT_DOUBLE_EQ(*a.cost, 2 * 1.1 * 0.05);
    } else if (!a.pue_known) {
      EXPECT_DOUBLE_EQ(a.pue, 1.2);
      EXPECT_DOUBLE_EQ(*a.cost, 2 * 1.2 * 0.10);
    }
  }
}

TEST(Advisor, BadInput) {
  AdvisorOptions o;
  o.provider = "amazon";
  try {
    advise_regions(o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown cloud provider 'amazon'"), std::string::npos);
  }
  o.provider.clear();
  o.energy_kwh = -1;
  EXPECT_THROW(advise_regions(o), UsageError);
  auto path = std::filesystem::temp_directory_path() /
              ("verdant-prices-" + std::to_string(::getpid()) + ".csv");
  std::ofstream(path) << "region,usd_per_kwh\naws,0.12\nGCP:us-east4,0.07\n";
  auto prices = load_region_prices(path);
  EXPECT_DOUBLE_EQ(prices.at("aws"), 0.12);
  EXPECT_DOUBLE_EQ(prices.at("gcp:us-east4"), 0.07);
  std::ofstream(path) << "aws,0.12\nazure,cheap\n";
  try {
    load_region_prices(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string() + ":2:"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}
