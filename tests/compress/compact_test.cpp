#include "verdant/compress/compact.hpp"

#include <gtest/gtest.h>

#include <random>

#include "verdant/compress/prune.hpp"
#include "verdant/compress/quantize.hpp"
#include "verdant/core/error.hpp"

namespace vc = verdant::compress;
using verdant::Tensor;

namespace {
vc::NamedTensors make_layer(double sparsity) {
  std::mt19937_64 rng(9);
  std::normal_distribution<float> nd(0, 0.1f);
  Tensor w({300, 784}, verdant::DType::f32), b({300}, verdant::DType::f32);
  for (std::int64_t i = 0; i < w.numel(); ++i) w.data<float>()[i] = nd(rng);
  for (std::int64_t i = 0; i < b.numel(); ++i) b.data<float>()[i] = nd(rng);
  std::vector<Tensor> ws = {w}, ms = {vc::ones_mask(w.shape())};
  vc::magnitude_prune(ws, ms, sparsity, vc::PruneScope::layer);
  vc::apply_mask(w, ms[0]);
  return {{"0.weight", w}, {"0.bias", b}};
}
}  // namespace

TEST(Compact, RoundTripGivesTheInt8Values) {
  for (double s : {0.0, 0.92}) {
    const auto tensors = make_layer(s);
    const auto bytes = vc::encode_compact(tensors);
    const auto back = vc::decode_compact(bytes, "m.vcz");
    ASSERT_EQ(back.size(), 2u);
    const Tensor& w = tensors[0].second;
    const auto params = vc::per_channel_params(w);
    const Tensor fq = vc::fake_quantize_per_channel(w, params);
    for (std::int64_t i = 0; i < w.numel(); ++i) ASSERT_FLOAT_EQ(back[0].second.at(i), fq.at(i));
    for (std::int64_t i = 0; i < 300; ++i) ASSERT_EQ(back[1].second.at(i), tensors[1].second.at(i));
    EXPECT_EQ(back[0].first, "0.weight");
  }
}

TEST(Compact, SizesShrinkWithInt8AndSparsity) {
  const auto dense = make_layer(0.0), sparse = make_layer(0.92);
  const double fp32 = double(vc::dense_fp32_bytes(dense));
  const double int8 = double(vc::encode_compact(dense).size());
  const double both = double(vc::encode_compact(sparse).size());
  EXPECT_GT(fp32 / int8, 3.9);
  EXPECT_GT(fp32 / both, 20.0);
}

TEST(Compact, CorruptInputIsOneLineError) {
  auto bytes = vc::encode_compact(make_layer(0.5));
  auto bad = bytes;
  bad[0] = 'X';
  EXPECT_THROW(vc::decode_compact(bad, "m.vcz"), verdant::Error);
  bad = bytes;
  bad.resize(bytes.size() / 2);
  try {
    vc::decode_compact(bad, "m.vcz");
    FAIL();
  } catch (const verdant::Error& e) {
    EXPECT_NE(std::string(e.what()).find("m.vcz: "), std::string::npos);
  }
  bad = bytes;
  bad[bytes.size() / 2] ^= 0xFF;
  EXPECT_THROW(vc::decode_compact(bad, "m.vcz"), verdant::Error);
}
