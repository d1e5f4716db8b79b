// Bad .vdm input: each problem gives one clear line and no model, never a crash.
#include <gtest/gtest.h>

#include <cstring>

#include "test_models.hpp"

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

TEST(VdmFormat, MissingFileNamesThePath) {
  std::string err;
  EXPECT_EQ(Model::load_file("/nonexistent/model.vdm", &err), nullptr);
  EXPECT_NE(err.find("/nonexistent/model.vdm: cannot open"), std::string::npos);
}

}  // namespace
}  // namespace verdant::runtime
