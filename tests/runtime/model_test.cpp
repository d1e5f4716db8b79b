// Inference against a double-precision reference: fp32 within float rounding, int8 within
// its quantization error, CSR exactly equal to dense int8 on the same pruned weights.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "test_models.hpp"
#include "verdant/runtime/kernels.hpp"

namespace verdant::runtime {
namespace {

using testing::calibrate;
using testing::prune_blocks;
using testing::random_inputs;
using testing::random_vec;
using testing::reference_forward;
using testing::set_encoding;

std::unique_ptr<Model> load(const ModelSpec& spec) {
  std::string err;
  auto bytes = write_vdm(spec, &err);
  EXPECT_FALSE(bytes.empty()) << err;
  auto m = Model::load_buffer(bytes.data(), bytes.size(), &err);
  EXPECT_NE(m, nullptr) << err;
  return m;
}

void expect_fp32_matches(const ModelSpec& spec) {
  auto m = load(spec);
  ASSERT_NE(m, nullptr);
  for (const auto& in : random_inputs(8, m->input_size())) {
    std::vector<float> out(m->output_size());
    ASSERT_EQ(m->run(in.data(), in.size(), out.data(), out.size()), RunStatus::ok);
    const auto ref = reference_forward(spec, in);
    ASSERT_EQ(ref.size(), out.size());
    for (std::size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref[i], 1e-5);
  }
}

TEST(Runtime, Fp32MlpMatchesReference) {
  expect_fp32_matches(testing::small_mlp());
}
TEST(Runtime, Fp32ConvNetMatchesReference) {
  expect_fp32_matches(testing::small_convnet());
}

// Int8 error bound: a few output quantization steps of the widest layer.
void expect_int8_close(ModelSpec spec, vdm::Encoding enc) {
  const auto ins = random_inputs(32, std::size_t{spec.input_c} * spec.input_h * spec.input_w);
  calibrate(spec, ins);
  set_encoding(spec, enc);
  auto m = load(spec);
  ASSERT_NE(m, nullptr);
  double max_err = 0, max_ref = 0;
  for (const auto& in : ins) {
    std::vector<float> out(m->output_size());
    ASSERT_EQ(m->run(in.data(), in.size(), out.data(), out.size()), RunStatus::ok);
    const auto ref = reference_forward(spec, in);
    for (std::size_t i = 0; i < out.size(); ++i) {
      max_err = std::max(max_err, std::abs(out[i] - ref[i]));
      max_ref = std::max(max_ref, std::abs(ref[i]));
    }
  }
  EXPECT_LT(max_err, 0.06 * max_ref + 0.02) << "max |ref| " << max_ref;
}

TEST(Runtime, Int8MlpCloseToFloat) {
  expect_int8_close(testing::small_mlp(), vdm::Encoding::int8);
}
TEST(Runtime, Int8ConvNetCloseToFloat) {
  expect_int8_close(testing::small_convnet(), vdm::Encoding::int8);
}

// A pruned spec encoded dense int8 and in the sparse encoding `enc` gives identical outputs;
// with `sparse_kernel`, the loader keeps the layer before the head sparse (runs its kernel).
void expect_sparse_equals_dense(ModelSpec spec, vdm::Encoding enc, bool sparse_kernel) {
  const auto ins = random_inputs(16, std::size_t{spec.input_c} * spec.input_h * spec.input_w);
  calibrate(spec, ins);
  ModelSpec dense = spec, sparse = spec;
  set_encoding(dense, vdm::Encoding::int8);
  set_encoding(sparse, enc);
  auto md = load(dense);
  auto ms = load(sparse);
  ASSERT_TRUE(md && ms);
  if (sparse_kernel) EXPECT_FALSE(ms->densified(ms->num_layers() - 3));
  EXPECT_LT(ms->macs(), md->macs());
  for (const auto& in : ins) {
    std::vector<float> a(md->output_size()), b(ms->output_size());
    md->run(in.data(), in.size(), a.data(), a.size());
    ms->run(in.data(), in.size(), b.data(), b.size());
    EXPECT_EQ(a, b);
  }
}

// 70% zeros: the loader may run CSR layers through the dense kernel; 99% zeros: below every
// table's csr_max_density, so the sparse kernel itself runs.
TEST(Runtime, CsrEqualsDenseInt8OnPrunedWeights) {
  for (float pruned : {0.7f, 0.99f})
    for (ModelSpec spec : {testing::small_mlp(200, 120, 10), testing::small_convnet()}) {
      testing::prune_by_magnitude(spec, pruned);
      expect_sparse_equals_dense(spec, vdm::Encoding::int8_csr, pruned > 0.9f);
    }
}

// 4x4 block-sparse layers give exactly the dense int8 results (rows and K that are not
// multiples of 4 included); at 90% of blocks pruned the block kernel itself runs, at 50%
// the loader may expand the layer to dense rows.
TEST(Runtime, BlockSparseEqualsDenseInt8) {
  for (double fraction : {0.5, 0.9})
    for (ModelSpec spec : {testing::small_mlp(203, 118, 10), testing::small_convnet()}) {
      prune_blocks(spec, fraction);
      expect_sparse_equals_dense(spec, vdm::Encoding::int8_bsr, fraction > 0.8);
    }
}

// An int8 conv with max pooling pools its accumulators before requantizing them (the loader's
// pool_before_requant): on every table and in every int8 layout, its outputs equal the
// unpooled conv's requantized outputs max-pooled afterwards.
TEST(Runtime, MaxPoolingBeforeRequantizationEqualsAfter) {
  ModelSpec pooled;
  pooled.input_c = 3, pooled.input_h = 9, pooled.input_w = 11;
  pooled.layers.push_back(testing::conv(3, 20, 3, 1, 1, vdm::Pool::max, 61));
  const auto ins = random_inputs(8, 3 * 9 * 11);
  calibrate(pooled, ins);
  for (const vdm::Encoding enc :
       {vdm::Encoding::int8, vdm::Encoding::int8_csr, vdm::Encoding::int8_bsr}) {
    ModelSpec with_pool = pooled;
    if (enc == vdm::Encoding::int8_bsr) prune_blocks(with_pool, 0.6);
    if (enc == vdm::Encoding::int8_csr) testing::prune_by_magnitude(with_pool, 0.995f);
    set_encoding(with_pool, enc);
    with_pool.layers[0].quantize_output = true;  // u8 outputs, dequantized by run()
    ModelSpec without_pool = with_pool;
    without_pool.layers[0].pool = vdm::Pool::none;
    without_pool.layers[0].pool_size = without_pool.layers[0].pool_stride = 0;
    for (const KernelTable* table : supported_kernel_tables()) {
      std::string err;
      const auto a_bytes = write_vdm(with_pool, &err), b_bytes = write_vdm(without_pool, &err);
      auto a = Model::load_buffer(a_bytes.data(), a_bytes.size(), &err, {.kernels = table});
      auto b = Model::load_buffer(b_bytes.data(), b_bytes.size(), &err, {.kernels = table});
      ASSERT_TRUE(a && b) << err;
      ASSERT_EQ(a->output_size(), 20u * 4 * 5);
      for (const auto& in : ins) {
        std::vector<float> got(a->output_size()), full(b->output_size());
        ASSERT_EQ(a->run(in.data(), in.size(), got.data(), got.size()), RunStatus::ok);
        ASSERT_EQ(b->run(in.data(), in.size(), full.data(), full.size()), RunStatus::ok);
        for (std::size_t c = 0; c < 20; ++c)
          for (std::size_t y = 0; y < 4; ++y)
            for (std::size_t x = 0; x < 5; ++x) {
              const float* w = full.data() + (c * 9 + 2 * y) * 11 + 2 * x;
              const float expected = std::max({w[0], w[1], w[11], w[12]});
              ASSERT_EQ(got[(c * 4 + y) * 5 + x], expected)
                  << table->isa << " channel " << c << " at " << y << "," << x;
            }
      }
    }
  }
}

// A pruned-away neuron (all-zero weight row) still outputs its bias in int8.
TEST(Runtime, AllZeroRowKeepsItsBias) {
  ModelSpec spec = testing::small_mlp();
  LayerSpec& head = spec.layers.back();
  const std::size_t k = head.weight.size() / head.out_c;
  std::fill_n(head.weight.begin() + 3 * k, k, 0.f);
  head.bias[3] = 0.7f;
  const auto ins = random_inputs(8, spec.input_w);
  calibrate(spec, ins);
  set_encoding(spec, vdm::Encoding::int8);
  auto m = load(spec);
  ASSERT_NE(m, nullptr);
  std::vector<float> out(m->output_size());
  m->run(ins[0].data(), ins[0].size(), out.data(), out.size());
  EXPECT_NEAR(out[3], 0.7f, 0.01f);
}

TEST(Runtime, MixedFp32AndInt8Layers) {
  const auto ins = random_inputs(16, 3 * 9 * 7);
  const ModelSpec spec = testing::mixed_convnet(ins);
  auto m = load(spec);
  ASSERT_NE(m, nullptr);
  for (const auto& in : ins) {
    std::vector<float> out(m->output_size());
    ASSERT_EQ(m->run(in.data(), in.size(), out.data(), out.size()), RunStatus::ok);
    const auto ref = reference_forward(spec, in);
    for (std::size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], ref[i], 0.1);
  }
}

TEST(Runtime, InputSizeMismatchIsReportedNotRun) {
  auto m = load(testing::small_mlp());
  std::vector<float> in(m->input_size() + 1), out(m->output_size());
  EXPECT_EQ(m->run(in.data(), in.size(), out.data(), out.size()), RunStatus::bad_input_size);
  EXPECT_EQ(m->run(in.data(), m->input_size(), out.data(), out.size() - 1),
            RunStatus::bad_output_size);
  EXPECT_EQ(m->predict(in.data(), 3), -1);
  EXPECT_STREQ(run_status_message(RunStatus::bad_input_size),
               "input size does not match the model's input shape");
}

TEST(Runtime, NanInputDoesNotCrashInt8) {
  ModelSpec spec = testing::small_convnet();
  calibrate(spec, random_inputs(4, 3 * 9 * 7));
  set_encoding(spec, vdm::Encoding::int8);
  auto m = load(spec);
  std::vector<float> in(m->input_size(), std::nanf("")), out(m->output_size());
  EXPECT_EQ(m->run(in.data(), in.size(), out.data(), out.size()), RunStatus::ok);
}

TEST(Runtime, LoadFileMapsTheSameModel) {
  ModelSpec spec = testing::small_convnet();
  std::string err;
  auto bytes = write_vdm(spec, &err);
  const auto path = std::filesystem::temp_directory_path() / "verdant_runtime_test.vdm";
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()),
             static_cast<std::streamsize>(bytes.size()));
  auto a = Model::load_file(path.string(), &err);
  ASSERT_NE(a, nullptr) << err;
  auto b = Model::load_buffer(bytes.data(), bytes.size(), &err);
  auto in = random_vec(a->input_size(), 0.f, 1.f, 9);
  std::vector<float> oa(a->output_size()), ob(b->output_size());
  a->run(in.data(), in.size(), oa.data(), oa.size());
  b->run(in.data(), in.size(), ob.data(), ob.size());
  EXPECT_EQ(oa, ob);
  std::filesystem::remove(path);
}

TEST(Runtime, ReplaceHeadWeightsRoundTrips) {
  for (vdm::Encoding enc : {vdm::Encoding::f32, vdm::Encoding::int8, vdm::Encoding::int8_csr,
                            vdm::Encoding::int8_bsr}) {
    ModelSpec spec = testing::small_mlp();
    if (enc == vdm::Encoding::int8_bsr) prune_blocks(spec, 0.5);
    const auto ins = random_inputs(8, spec.input_w);
    calibrate(spec, ins);
    set_encoding(spec, enc);
    auto m = load(spec);
    const std::size_t head = m->num_layers() - 1;
    std::vector<float> w, b;
    std::string err;
    ASSERT_TRUE(layer_weights(*m, head, &w, &b, &err)) << err;
    for (float& v : b) v += 0.5f;  // a visible change: every logit moves by ~0.5
    std::size_t delta = 0;
    auto bytes = replace_layer_weights(*m, head, w, b, &delta, &err);
    ASSERT_FALSE(bytes.empty()) << err;
    EXPECT_GT(delta, 0u);
    EXPECT_LT(delta, bytes.size());
    auto m2 = Model::load_buffer(bytes.data(), bytes.size(), &err);
    ASSERT_NE(m2, nullptr) << err;
    EXPECT_EQ(m2->macs(), m->macs());  // a sparse head keeps its pattern
    std::vector<float> o1(m->output_size()), o2(m2->output_size());
    m->run(ins[0].data(), ins[0].size(), o1.data(), o1.size());
    m2->run(ins[0].data(), ins[0].size(), o2.data(), o2.size());
    for (std::size_t i = 0; i < o1.size(); ++i) EXPECT_NEAR(o2[i] - o1[i], 0.5f, 0.02f);
  }
}

TEST(Runtime, RunUntilGivesTheHeadInput) {
  ModelSpec spec = testing::small_mlp();
  auto m = load(spec);
  const auto in = random_vec(m->input_size(), 0.f, 1.f, 3);
  const std::size_t head = m->num_layers() - 1;
  std::vector<float> feat(m->activation_size(head));
  ASSERT_EQ(m->run_until(in.data(), in.size(), head, feat.data(), feat.size()), RunStatus::ok);
  ModelSpec prefix = spec;
  prefix.layers.pop_back();
  const auto ref = reference_forward(prefix, in);
  for (std::size_t i = 0; i < feat.size(); ++i) EXPECT_NEAR(feat[i], ref[i], 1e-5);
}

}  // namespace
}  // namespace verdant::runtime
