// Bad .vdm input: each problem gives one clear line and no model, never a crash.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include "test_models.hpp"
#include "verdant/runtime/kernels.hpp"

namespace verdant::runtime {
namespace {

std::vector<std::uint8_t> good_file() {
  std::string err;
  ModelSpec spec = testing::small_convnet();
  testing::set_encoding(spec, vdm::Encoding::int8);
  return write_vdm(spec, &err);
}

void fix_crc(std::vector<std::uint8_t>& f) {
  const std::uint32_t crc = vdm::file_crc32(f.data(), f.size());
  std::memcpy(f.data() + offsetof(vdm::FileHeader, crc32), &crc, 4);
}

std::string load_error(const std::vector<std::uint8_t>& f) {
  std::string err;
  auto m = Model::load_buffer(f.data(), f.size(), &err);
  EXPECT_EQ(m, nullptr);
  EXPECT_EQ(err.find('\n'), std::string::npos);
  return err;
}

TEST(VdmFormat, Crc32KnownValue) {
  const char* s = "123456789";  // the standard check value of CRC-32/IEEE
  EXPECT_EQ(vdm::crc32_update(0, s, 9), 0xCBF43926u);
}

TEST(VdmFormat, GoodFileLoads) {
  auto f = good_file();
  std::string err;
  EXPECT_NE(Model::load_buffer(f.data(), f.size(), &err), nullptr) << err;
  EXPECT_EQ(f.size() % vdm::kAlign, 0u);
}

TEST(VdmFormat, TruncatedFile) {
  auto f = good_file();
  f.resize(f.size() - 100);
  EXPECT_NE(load_error(f).find("truncated"), std::string::npos);
  f.resize(10);
  EXPECT_NE(load_error(f).find("truncated"), std::string::npos);
  EXPECT_NE(load_error({}).find("truncated"), std::string::npos);
}

TEST(VdmFormat, CorruptByteFailsChecksum) {
  auto f = good_file();
  f[f.size() - 70] ^= 0x5A;
  EXPECT_NE(load_error(f).find("checksum mismatch"), std::string::npos);
}

TEST(VdmFormat, UnknownVersion) {
  auto f = good_file();
  const std::uint32_t v = 2;
  std::memcpy(f.data() + offsetof(vdm::FileHeader, version), &v, 4);
  fix_crc(f);
  EXPECT_NE(load_error(f).find("unsupported .vdm version 2"), std::string::npos);
}

TEST(VdmFormat, BadMagic) {
  auto f = good_file();
  f[0] = 'X';
  EXPECT_NE(load_error(f).find("not a .vdm file"), std::string::npos);
}

TEST(VdmFormat, InconsistentShapeWithValidChecksum) {
  auto f = good_file();
  vdm::FileHeader h;
  std::memcpy(&h, f.data(), sizeof h);
  auto* l1 = reinterpret_cast<vdm::LayerRecord*>(f.data() + h.layer_table_offset) + 1;
  l1->in_c += 1;
  fix_crc(f);
  EXPECT_NE(load_error(f).find("layer 1: input shape"), std::string::npos);
}

TEST(VdmFormat, TensorOutsideFile) {
  auto f = good_file();
  vdm::FileHeader h;
  std::memcpy(&h, f.data(), sizeof h);
  auto* t = reinterpret_cast<vdm::TensorRecord*>(f.data() + h.tensor_table_offset);
  t->offset = f.size();
  fix_crc(f);
  EXPECT_NE(load_error(f).find("outside the file"), std::string::npos);
}

// A block-sparse mlp (K = 37 and 45: ragged 4x4 blocks) and a pointer to the tensor of
// `role` of its first linear layer.
std::vector<std::uint8_t> bsr_file() {
  std::string err;
  ModelSpec spec = testing::small_mlp();
  testing::set_encoding(spec, vdm::Encoding::int8_bsr);
  return write_vdm(spec, &err);
}

template <typename T>
T* bsr_tensor(std::vector<std::uint8_t>& f, vdm::TensorRole role) {
  vdm::FileHeader h;
  std::memcpy(&h, f.data(), sizeof h);
  const auto* l = reinterpret_cast<const vdm::LayerRecord*>(f.data() + h.layer_table_offset);
  std::size_t li = 0;
  while (l[li].encoding != vdm::Encoding::int8_bsr) ++li;
  auto* t =
      reinterpret_cast<vdm::TensorRecord*>(f.data() + h.tensor_table_offset) + l[li].first_tensor;
  for (std::uint32_t i = 0; i < l[li].num_tensors; ++i)
    if (t[i].role == role) return reinterpret_cast<T*>(f.data() + t[i].offset);
  return nullptr;
}

TEST(VdmFormat, BlockSparseLoads) {
  auto f = bsr_file();
  ASSERT_FALSE(f.empty());
  std::string err;
  EXPECT_NE(Model::load_buffer(f.data(), f.size(), &err), nullptr) << err;
}

TEST(VdmFormat, BlockSparseNonZeroPaddingIsRejected) {
  auto f = bsr_file();
  // Block row 0's last block covers columns 36..39 of K = 37: entry (0, 38) is padding.
  const auto* rp = bsr_tensor<std::uint32_t>(f, vdm::TensorRole::row_ptr);
  auto* w = bsr_tensor<std::int8_t>(f, vdm::TensorRole::weight);
  w[16 * (rp[1] - 1) + 2] = 5;
  fix_crc(f);
  EXPECT_NE(load_error(f).find("outside the weight matrix must be zero"), std::string::npos);
}

TEST(VdmFormat, BlockSparseColumnOutOfRange) {
  auto f = bsr_file();
  const auto* rp = bsr_tensor<std::uint32_t>(f, vdm::TensorRole::row_ptr);
  bsr_tensor<std::uint16_t>(f, vdm::TensorRole::col_idx)[rp[1] - 1] = 10;  // 37 / 4 -> 10 blocks
  fix_crc(f);
  EXPECT_NE(load_error(f).find("block columns must be increasing and below 10"), std::string::npos);
}

TEST(VdmFormat, BlockSparseRowPointerPastTheBlocks) {
  auto f = bsr_file();
  bsr_tensor<std::uint32_t>(f, vdm::TensorRole::row_ptr)[1] = 1000;
  fix_crc(f);
  EXPECT_NE(load_error(f).find("row_ptr is not non-decreasing"), std::string::npos);
}

// An f32 layer's weights and biases must be finite: the error names the file, the layer and
// the tensor.
TEST(VdmFormat, NonFiniteF32WeightIsRejectedNamingIt) {
  std::string err;
  const auto good = write_vdm(testing::small_mlp(), &err);
  ASSERT_FALSE(good.empty()) << err;
  for (vdm::TensorRole role : {vdm::TensorRole::weight, vdm::TensorRole::bias}) {
    auto f = good;
    vdm::FileHeader h;
    std::memcpy(&h, f.data(), sizeof h);
    const auto* l = reinterpret_cast<const vdm::LayerRecord*>(f.data() + h.layer_table_offset) + 2;
    const auto* t = reinterpret_cast<const vdm::TensorRecord*>(f.data() + h.tensor_table_offset) +
                    l->first_tensor;
    while (t->role != role) ++t;
    const float bad =
        role == vdm::TensorRole::weight ? std::nanf("") : -std::numeric_limits<float>::infinity();
    std::memcpy(f.data() + t->offset + 4 * 5, &bad, 4);
    fix_crc(f);
    auto m = Model::load_buffer(f.data(), f.size(), &err, {.name = "nan.vdm"});
    EXPECT_EQ(m, nullptr);
    EXPECT_EQ(err, role == vdm::TensorRole::weight
                       ? "nan.vdm: layer 2: weight tensor element 5 is NaN (weights must be finite)"
                       : "nan.vdm: layer 2: bias tensor element 5 is -infinity (biases must be "
                         "finite)");
  }
}

// A NaN weight scale of an int8 layer is rejected like any other non-positive one.
TEST(VdmFormat, NanWeightScaleIsRejected) {
  auto f = good_file();
  vdm::FileHeader h;
  std::memcpy(&h, f.data(), sizeof h);
  const auto* t = reinterpret_cast<const vdm::TensorRecord*>(f.data() + h.tensor_table_offset);
  while (t->role != vdm::TensorRole::weight_scale) ++t;
  const float nan = std::nanf("");
  std::memcpy(f.data() + t->offset, &nan, 4);
  fix_crc(f);
  EXPECT_NE(load_error(f).find("layer 0: weight scale of channel 0 is not a positive number"),
            std::string::npos);
}

// The writer refuses what the loader would reject.
TEST(VdmFormat, WriterRefusesNonFiniteWeights) {
  ModelSpec spec = testing::small_mlp();
  spec.layers[3].weight[7] = std::numeric_limits<float>::infinity();
  std::string err;
  EXPECT_TRUE(write_vdm(spec, &err).empty());
  EXPECT_EQ(err, "layer 3: weight element 7 is +infinity (weights must be finite)");
  testing::set_encoding(spec, vdm::Encoding::int8);
  EXPECT_TRUE(write_vdm(spec, &err).empty());
  spec.layers[3].weight[7] = 0.f;
  spec.layers[1].bias[2] = std::nanf("");
  EXPECT_TRUE(write_vdm(spec, &err).empty());
  EXPECT_EQ(err, "layer 1: bias element 2 is NaN (weights must be finite)");
}

TEST(VdmFormat, LoadFileNamesThePathOfANonFiniteWeight) {
  std::string err;
  ModelSpec spec = testing::small_mlp();
  auto f = write_vdm(spec, &err);
  vdm::FileHeader h;
  std::memcpy(&h, f.data(), sizeof h);
  const auto* t = reinterpret_cast<const vdm::TensorRecord*>(f.data() + h.tensor_table_offset);
  const float nan = std::nanf("");
  std::memcpy(f.data() + t->offset, &nan, 4);  // layer 1's weight [0][0]
  fix_crc(f);
  const auto path = std::filesystem::temp_directory_path() /
                    ("verdant_nan_weight_" + std::to_string(::getpid()) + ".vdm");
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(f.data()), static_cast<std::streamsize>(f.size()));
  EXPECT_EQ(Model::load_file(path.string(), &err), nullptr);
  EXPECT_EQ(err,
            path.string() + ": layer 1: weight tensor element 0 is NaN (weights must be finite)");
  std::filesystem::remove(path);
}

// A table whose instructions this CPU lacks is refused, not run.
TEST(VdmFormat, UnsupportedKernelTableIsRefused) {
  const auto f = good_file();
  KernelTable stranger = reference_kernels();
  stranger.isa = "stranger";
  stranger.cpu_supports = [] { return false; };
  std::string err;
  EXPECT_EQ(Model::load_buffer(f.data(), f.size(), &err, {.kernels = &stranger}), nullptr);
  EXPECT_EQ(err, "<buffer>: kernel table 'stranger' is not supported by this CPU");
  for (const KernelTable* t : supported_kernel_tables()) {
    auto m = Model::load_buffer(f.data(), f.size(), &err, {.kernels = t});
    ASSERT_NE(m, nullptr) << err;
    EXPECT_STREQ(m->isa(), t->isa);
  }
}

TEST(VdmFormat, MissingFileNamesThePath) {
  std::string err;
  EXPECT_EQ(Model::load_file("/nonexistent/model.vdm", &err), nullptr);
  EXPECT_NE(err.find("/nonexistent/model.vdm: cannot open"), std::string::npos);
}

}  // namespace
}  // namespace verdant::runtime
