#include "verdant/train/checkpoint.hpp"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <functional>

#include "test_util.hpp"
#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/train/model_source.hpp"

namespace verdant::train {
namespace {

using test::TempDir;

Checkpoint sample_checkpoint() {
  Checkpoint c;
  c.meta = {{"model.spec", "mlp"}, {"empty", ""}, {"multi\nline", "a\nb"}};
  c.tensors.emplace_back("param/0.weight", Tensor::from({2, 3}, {1, -2, 3.5f, 0, 1e-30f, -0.0f}));
  Tensor i32({4}, DType::i32);
  for (int i = 0; i < 4; ++i) i32.data<std::int32_t>()[i] = -i * 1000000;
  c.tensors.emplace_back("optim/step", i32);
  Tensor u8({33}, DType::u8);
  for (int i = 0; i < 33; ++i) u8.data<std::uint8_t>()[i] = static_cast<std::uint8_t>(i * 7);
  c.tensors.emplace_back("rng/default", u8);
  c.tensors.emplace_back("scalar", Tensor::from({}, {42.0f}));
  c.tensors.emplace_back("empty", Tensor({0, 5}, DType::f32));
  Tensor i8({2, 2}, DType::i8);
  for (int i = 0; i < 4; ++i) i8.data<std::int8_t>()[i] = static_cast<std::int8_t>(-128 + i);
  c.tensors.emplace_back("int8", i8);
  return c;
}

void expect_equal(const Checkpoint& a, const Checkpoint& b) {
  EXPECT_EQ(a.meta, b.meta);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (std::size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].first, b.tensors[i].first);
    const Tensor& x = a.tensors[i].second;
    const Tensor& y = b.tensors[i].second;
    EXPECT_EQ(x.dtype(), y.dtype());
    EXPECT_EQ(x.shape(), y.shape());
    ASSERT_EQ(x.nbytes(), y.nbytes());
    EXPECT_EQ(std::memcmp(x.raw(), y.raw(), x.nbytes()), 0) << a.tensors[i].first;
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

void expect_one_line(const std::string& msg, const std::string& file, const std::string& what) {
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  EXPECT_NE(msg.find(what), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

// Rewrites the size field and checksum so a deliberately damaged body gets past them.
void reseal(std::vector<std::uint8_t>& b) {
  std::uint64_t size = b.size();
  std::memcpy(b.data() + 16, &size, 8);
  auto crc = static_cast<std::uint32_t>(crc32(0L, b.data(), static_cast<uInt>(b.size() - 4)));
  std::memcpy(b.data() + b.size() - 4, &crc, 4);
}

TEST(Checkpoint, RoundTripThroughFileIsExact) {
  TempDir dir;
  Checkpoint c = sample_checkpoint();
  save_checkpoint(dir / "a.vckpt", c);
  expect_equal(c, load_checkpoint(dir / "a.vckpt"));
  EXPECT_EQ(*load_checkpoint(dir / "a.vckpt").find_meta("model.spec"), "mlp");
  int entries = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1) << "atomic write left a temporary file";
}

TEST(Checkpoint, HeaderFields) {
  auto b = encode_checkpoint(sample_checkpoint());
  EXPECT_EQ(std::memcmp(b.data(), "VCKPT\r\n\x1a", 8), 0);
  std::uint32_t version;
  std::memcpy(&version, b.data() + 8, 4);
  EXPECT_EQ(version, kCheckpointVersion);
  std::uint64_t size;
  std::memcpy(&size, b.data() + 16, 8);
  EXPECT_EQ(size, b.size());
}

TEST(Checkpoint, MissingFile) {
  TempDir dir;
  auto f = (dir / "none.vckpt").string();
  expect_one_line(error_of([&] { load_checkpoint(f); }), f, "no such checkpoint file");
}

TEST(Checkpoint, TruncatedAtAnyLength) {
  TempDir dir;
  auto full = encode_checkpoint(sample_checkpoint());
  auto f = (dir / "t.vckpt").string();
  for (std::size_t len :
       {std::size_t{0}, std::size_t{5}, std::size_t{27}, full.size() / 2, full.size() - 1}) {
    std::vector<std::uint8_t> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    write_file_atomic(f, cut);
    expect_one_line(error_of([&] { load_checkpoint(f); }), f, "truncated checkpoint");
  }
}

TEST(Checkpoint, WrongMagicUnknownVersionBadChecksumTrailingBytes) {
  TempDir dir;
  auto good = encode_checkpoint(sample_checkpoint());
  auto f = (dir / "c.vckpt").string();

  auto b = good;
  b[0] = 'X';
  write_file_atomic(f, b);
  expect_one_line(error_of([&] { load_checkpoint(f); }), f, "not a .vckpt checkpoint (bad magic)");

  b = good;
  std::uint32_t v = 99;
  std::memcpy(b.data() + 8, &v, 4);
  write_file_atomic(f, b);
  expect_one_line(error_of([&] { load_checkpoint(f); }), f, "unsupported checkpoint version 99");

  b = good;
  b[b.size() - 20] ^= 0x01;  // a bit inside the tensor data
  write_file_atomic(f, b);
  expect_one_line(error_of([&] { load_checkpoint(f); }), f, "checksum mismatch");

  b = good;
  b.push_back(0);
  write_file_atomic(f, b);
  expect_one_line(error_of([&] { load_checkpoint(f); }), f, "unexpected bytes");
}

TEST(Checkpoint, DamagedTablesWithValidChecksumNeverCrash) {
  // Flip each byte after the header (re-sealing size and checksum so the parser really reads
  // the damaged table): every result must be a clean Error or a successful parse.
  auto good = encode_checkpoint(sample_checkpoint());
  int errors = 0;
  for (std::size_t i = 24; i + 4 < good.size(); ++i) {
    for (std::uint8_t flip : {std::uint8_t{0x80}, std::uint8_t{0xFF}}) {
      auto b = good;
      b[i] ^= flip;
      reseal(b);
      try {
        decode_checkpoint(b, "fuzz.vckpt");
      } catch (const Error& e) {
        ++errors;
        EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
        EXPECT_EQ(std::string(e.what()).rfind("fuzz.vckpt: ", 0), 0u) << e.what();
      }
    }
  }
  EXPECT_GT(errors, 50);
}

TEST(Checkpoint, ModelYamlAskingForAHugeLayerIsAnErrorNotAnAllocation) {
  // A checkpoint carries its model's YAML; a corrupt or crafted one must not make the loader
  // try to allocate terabytes (std::bad_alloc used to escape, naming no file).
  Checkpoint ckpt;
  ckpt.set_meta("model.spec", "net.yaml");
  ckpt.set_meta("model.yaml",
                "input: [1, 28, 28]\nlayers:\n  - flatten\n  - linear: {out_features: "
                "100000000000}\n");
  const auto bytes = encode_checkpoint(ckpt);
  const Checkpoint back = decode_checkpoint(bytes, "c.vckpt");
  try {
    model_from_checkpoint(back, "c.vckpt");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("net.yaml:4: linear's weights would hold more than", 0),
              0u)
        << e.what();
  }
}

TEST(Checkpoint, LookupHelpers) {
  Checkpoint c = sample_checkpoint();
  EXPECT_EQ(c.find_tensor("nope"), nullptr);
  ASSERT_NE(c.find_tensor("scalar"), nullptr);
  EXPECT_EQ(c.find_tensor("scalar")->item(), 42.0f);
  c.set_meta("model.spec", "lenet5");
  EXPECT_EQ(c.meta_at("model.spec"), "lenet5");
  EXPECT_THROW(c.meta_at("absent"), Error);
}

}  // namespace
}  // namespace verdant::train
