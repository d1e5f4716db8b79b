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

TEST(VdmFormat, MissingFileNamesThePath) {
  std::string err;
  EXPECT_EQ(Model::load_file("/nonexistent/model.vdm", &err), nullptr);
  EXPECT_NE(err.find("/nonexistent/model.vdm: cannot open"), std::string::npos);
}

}  // namespace
}  // namespace verdant::runtime
