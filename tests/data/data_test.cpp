#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <set>
#include <string>

#include "verdant/core/error.hpp"
#include "verdant/core/io.hpp"
#include "verdant/data/dataset.hpp"
#include "verdant/data/idx.hpp"
#include "verdant/data/loader.hpp"

namespace verdant::data {
namespace fs = std::filesystem;

namespace {

class TempDir {
 public:
  TempDir() {
    path_ =
        fs::temp_directory_path() /
        ("verdant_data_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
         "_" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// n images of 2x3 pixels whose bytes encode (image index, pixel index); labels i % 10.
void write_tiny_pair(const TempDir& dir, int n, bool gzip, const std::string& stem = "tiny") {
  IdxArray img{{n, 2, 3}, {}};
  IdxArray lab{{n}, {}};
  for (int i = 0; i < n; ++i) {
    for (int p = 0; p < 6; ++p) img.bytes.push_back(static_cast<std::uint8_t>(i * 6 + p));
    lab.bytes.push_back(static_cast<std::uint8_t>(i % 10));
  }
  write_idx(dir / (stem + "-images"), img, gzip);
  write_idx(dir / (stem + "-labels"), lab, gzip);
}

void write_bytes(const fs::path& p, std::vector<std::uint8_t> bytes) {
  write_file_atomic(p, bytes);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

void expect_one_line_naming(const std::string& msg, const fs::path& file, const std::string& what) {
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find(what), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
}

}  // namespace

TEST(Idx, RoundTripPlainAndGzip) {
  TempDir dir;
  for (bool gz : {false, true}) {
    write_tiny_pair(dir, 7, gz);
    IdxArray img = read_idx(dir / "tiny-images");
    EXPECT_EQ(img.dims, (std::vector<std::int64_t>{7, 2, 3}));
    ASSERT_EQ(img.bytes.size(), 42u);
    EXPECT_EQ(img.bytes[41], 41);
    auto raw = read_file_bytes(dir / "tiny-images");
    EXPECT_EQ(raw[0] == 0x1f && raw[1] == 0x8b, gz);
  }
}

TEST(Idx, MissingFile) {
  TempDir dir;
  expect_one_line_naming(error_of([&] { read_idx(dir / "nope.gz"); }), dir / "nope.gz",
                         "no such file");
}

TEST(Idx, WrongMagic) {
  TempDir dir;
  write_bytes(dir / "bad", {0x12, 0x34, 0x08, 0x01, 0, 0, 0, 1, 5});
  expect_one_line_naming(error_of([&] { read_idx(dir / "bad"); }), dir / "bad",
                         "bad magic 0x12340801");
}

TEST(Idx, UnsupportedType) {
  TempDir dir;
  write_bytes(dir / "float", {0, 0, 0x0D, 0x01, 0, 0, 0, 1, 0, 0, 0, 0});
  expect_one_line_naming(error_of([&] { read_idx(dir / "float"); }), dir / "float", "0x0D");
}

TEST(Idx, TruncatedHeaderAndData) {
  TempDir dir;
  write_bytes(dir / "short", {0, 0});
  expect_one_line_naming(error_of([&] { read_idx(dir / "short"); }), dir / "short", "truncated");
  write_bytes(dir / "hdr", {0, 0, 0x08, 0x03, 0, 0, 0, 2});
  expect_one_line_naming(error_of([&] { read_idx(dir / "hdr"); }), dir / "hdr",
                         "truncated IDX header");
  write_tiny_pair(dir, 5, false);
  auto raw = read_file_bytes(dir / "tiny-images");
  raw.resize(raw.size() - 3);
  write_bytes(dir / "cut", raw);
  expect_one_line_naming(error_of([&] { read_idx(dir / "cut"); }), dir / "cut",
                         "truncated IDX data (header promises 30 bytes, file has 27)");
  raw.resize(raw.size() + 10, 0);
  write_bytes(dir / "long", raw);
  expect_one_line_naming(error_of([&] { read_idx(dir / "long"); }), dir / "long",
                         "unexpected bytes");
}

TEST(Idx, ZeroDimensionDoesNotHideHugeOnes) {
  // Found by fuzz_idx_reader: [0, 4244635134, 4294965758, 9338120] has an empty payload, and
  // its sample size overflowed a 64-bit count further on.
  TempDir dir;
  write_bytes(dir / "f", {0,    0,    8,    4,    0,    0,    0,    0,    0xfc, 0xff,
                          0xfd, 0xfe, 0xff, 0xff, 0xf9, 0xfe, 0x00, 0x8e, 0x01, 0x08});
  expect_one_line_naming(error_of([&] { read_idx(dir / "f"); }), dir / "f",
                         "IDX dimensions are implausibly large");
  // Also found by it: [0, 2^21, 2^12, 2^31 + 1], whose nonzero product wraps 64 bits back
  // under the bound when the check comes after the product.
  write_bytes(dir / "w", {0, 0, 8, 4, 0, 0, 0, 0, 0, 0x20, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 1});
  expect_one_line_naming(error_of([&] { read_idx(dir / "w"); }), dir / "w",
                         "IDX dimensions are implausibly large");
  // Zero images of a sensible size are read (and refused by the dataset, naming the file).
  write_bytes(dir / "g", {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28});
  EXPECT_EQ(read_idx(dir / "g").dims, (std::vector<std::int64_t>{0, 28, 28}));
}

TEST(Idx, TruncatedAndCorruptGzip) {
  TempDir dir;
  write_tiny_pair(dir, 50, true);
  auto raw = read_file_bytes(dir / "tiny-images");
  auto cut = raw;
  cut.resize(cut.size() / 2);
  write_bytes(dir / "cut.gz", cut);
  expect_one_line_naming(error_of([&] { read_idx(dir / "cut.gz"); }), dir / "cut.gz",
                         "truncated gzip");
  auto bad = raw;
  for (std::size_t i = 12; i < bad.size() - 8; ++i) bad[i] ^= 0x5A;
  write_bytes(dir / "bad.gz", bad);
  expect_one_line_naming(error_of([&] { read_idx(dir / "bad.gz"); }), dir / "bad.gz", "gzip");
}

TEST(ImageDataset, CountMismatchNamesBothFiles) {
  TempDir dir;
  write_tiny_pair(dir, 6, true, "a");
  write_tiny_pair(dir, 5, true, "b");
  std::string msg =
      error_of([&] { ImageDataset::from_idx(dir / "a-images", dir / "b-labels", 10, 0.0f, 1.0f); });
  expect_one_line_naming(msg, dir / "b-labels", "5 labels");
  EXPECT_NE(msg.find((dir / "a-images").string()), std::string::npos);
}

TEST(ImageDataset, ZeroImagesNameTheFile) {
  // Before, this loaded, and training said only "the training set (0 samples) gives no batch
  // of size 64", naming no file.
  TempDir dir;
  write_tiny_pair(dir, 0, true);
  expect_one_line_naming(
      error_of([&] { ImageDataset::from_idx(dir / "tiny-images", dir / "tiny-labels", 10, 0, 1); }),
      dir / "tiny-images", "holds no images (its IDX header declares 0)");
}

TEST(ImageDataset, ImagesWithoutPixelsAreRefused) {
  // Found by fuzz_idx_reader: 4026531840 images of 0 x 0 x 0 pixels read as an empty array.
  const std::string msg = error_of([&] {
    ImageDataset({5, 0, 3}, {}, std::vector<std::uint8_t>(5), 10, 0, 1);
  });
  EXPECT_NE(msg.find("images of shape [5, 0, 3] have no pixels"), std::string::npos) << msg;
}

TEST(ImageDataset, LabelOutOfRange) {
  TempDir dir;
  write_tiny_pair(dir, 12, false);
  expect_one_line_naming(
      error_of([&] { ImageDataset::from_idx(dir / "tiny-images", dir / "tiny-labels", 5, 0, 1); }),
      dir / "tiny-labels", "label 5 at index 5");
}

TEST(ImageDataset, NormalisesPerBatchAndSlices) {
  TempDir dir;
  write_tiny_pair(dir, 8, true);
  auto ds = ImageDataset::from_idx(dir / "tiny-images", dir / "tiny-labels", 10, 0.5f, 0.25f);
  EXPECT_EQ(ds.size(), 8);
  EXPECT_EQ(ds.sample_shape(), (Shape{1, 2, 3}));
  std::vector<float> x(12);
  std::int32_t y[2];
  std::int64_t idx[2] = {3, 0};
  ds.fill(idx, x.data(), y);
  EXPECT_EQ(y[0], 3);
  EXPECT_EQ(y[1], 0);
  EXPECT_FLOAT_EQ(x[0], (18.0f / 255.0f - 0.5f) / 0.25f);
  EXPECT_FLOAT_EQ(x[6], (0.0f / 255.0f - 0.5f) / 0.25f);
  auto tail = ds.slice(5, 3);
  EXPECT_EQ(tail.size(), 3);
  EXPECT_EQ(tail.label(0), 5);
  EXPECT_EQ(tail.image_bytes(2)[0], 7 * 6);
  EXPECT_THROW(ds.slice(6, 3), Error);
  EXPECT_THROW(tail.fill(std::span<const std::int64_t>(idx, 1), x.data(), y), Error);
}

TEST(ImageDataset, EveryByteValueNormalisesExactlyInALargeBatch) {
  // 128 images of 16 x 16 pixels, each holding every byte value once: one batch is large
  // enough to be shared among threads, and each value must come out as the formula's float.
  const std::int64_t count = 128, side = 16, plane = side * side;
  std::vector<std::uint8_t> images(static_cast<std::size_t>(count * plane)), labels(count);
  for (std::int64_t i = 0; i < count; ++i) {
    labels[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i % 10);
    for (std::int64_t k = 0; k < plane; ++k)
      images[static_cast<std::size_t>(i * plane + k)] = static_cast<std::uint8_t>((i + k) % 256);
  }
  const float mean = 0.2860f, stddev = 0.3530f;
  ImageDataset ds({count, side, side}, images, labels, 10, mean, stddev);
  std::vector<std::int64_t> order(static_cast<std::size_t>(count));
  std::iota(order.rbegin(), order.rend(), 0);  // last image first
  std::vector<float> x(static_cast<std::size_t>(count * plane));
  std::vector<std::int32_t> y(static_cast<std::size_t>(count));
  ds.fill(order, x.data(), y.data());
  for (std::int64_t s = 0; s < count; ++s) {
    const std::int64_t image = order[static_cast<std::size_t>(s)];
    ASSERT_EQ(y[static_cast<std::size_t>(s)], image % 10);
    for (std::int64_t k = 0; k < plane; ++k) {
      const float p = static_cast<float>((image + k) % 256);
      ASSERT_EQ(x[static_cast<std::size_t>(s * plane + k)], (p / 255.0f - mean) / stddev)
          << "sample " << s << ", pixel " << k;
    }
  }
  order[7] = count;  // one index past the end: refused before anything is written
  std::fill(x.begin(), x.end(), -7.f);
  EXPECT_THROW(ds.fill(order, x.data(), y.data()), Error);
  EXPECT_TRUE(std::all_of(x.begin(), x.end(), [](float v) { return v == -7.f; }));
}

TEST(FashionMnist, MissingDirectoryAndFiles) {
  TempDir dir;
  expect_one_line_naming(error_of([&] { fashion_mnist(dir / "absent", true); }), dir / "absent",
                         "does not exist");
  expect_one_line_naming(error_of([&] { fashion_mnist(dir / "", true); }),
                         dir / "train-images-idx3-ubyte.gz", "no such file");
}

TEST(FashionMnist, RealFilesIfInstalled) {
  if (!fs::exists(kFashionMnistDefaultDir))
    GTEST_SKIP() << "Fashion-MNIST not installed at " << kFashionMnistDefaultDir
                 << " (Debian package dataset-fashion-mnist)";
  auto test = fashion_mnist(kFashionMnistDefaultDir, false);
  EXPECT_EQ(test.size(), 10000);
  EXPECT_EQ(test.sample_shape(), (Shape{1, 28, 28}));
  EXPECT_EQ(test.num_classes(), 10);
  // The normalisation constants are the training set's statistics; check them on the test set
  // (same distribution) loosely, so a wrong constant would show.
  double sum = 0, sq = 0;
  for (std::int64_t i = 0; i < test.size(); ++i)
    for (int k = 0; k < 784; ++k) {
      double v = test.image_bytes(i)[k] / 255.0;
      sum += v;
      sq += v * v;
    }
  double n = 784.0 * test.size(), mean = sum / n;
  EXPECT_NEAR(mean, kFashionMnistMean, 0.01);
  EXPECT_NEAR(std::sqrt(sq / n - mean * mean), kFashionMnistStd, 0.01);
}

TEST(Csv, LoadsFeaturesAndLabelColumn) {
  TempDir dir;
  write_file_atomic(dir / "t.csv", std::string_view("a, cls ,b\n1.5,2,3\n\n-4,0,5e1\n7,1,8\n"));
  auto ds = CsvDataset::load(dir / "t.csv", "cls");
  EXPECT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.sample_shape(), (Shape{2}));
  EXPECT_EQ(ds.num_classes(), 3);
  EXPECT_EQ(ds.feature_names(), (std::vector<std::string>{"a", "b"}));
  std::vector<float> x(4);
  std::int32_t y[2];
  std::int64_t idx[2] = {1, 0};
  ds.fill(idx, x.data(), y);
  EXPECT_EQ(x, (std::vector<float>{-4, 50, 1.5f, 3}));
  EXPECT_EQ(y[0], 0);
  EXPECT_EQ(y[1], 2);
  ds.standardize();
  double mean = (ds.feature(0, 0) + ds.feature(1, 0) + ds.feature(2, 0)) / 3.0;
  EXPECT_NEAR(mean, 0.0, 1e-6);
  // Default label column: the last one.
  EXPECT_EQ(CsvDataset::load(dir / "t.csv").feature_names(),
            (std::vector<std::string>{"a", "cls"}));
}

TEST(Csv, BadInputNamesFileAndLine) {
  TempDir dir;
  auto bad = [&](const std::string& text, const std::string& what, const std::string& label = "") {
    write_file_atomic(dir / "b.csv", std::string_view(text));
    expect_one_line_naming(error_of([&] { CsvDataset::load(dir / "b.csv", label); }), dir / "b.csv",
                           what);
  };
  bad("x,y\n1,0\n2,abc\n", "b.csv:3:2: column 'y': 'abc' is not a finite number");
  bad("x,y\n1,0\n2\n", "b.csv:3: expected 2 fields, found 1");
  bad("x,y\n1,0.5\n", "b.csv:2: label '0.5'");
  bad("x,y\n1,-1\n", "b.csv:2: label '-1'");
  bad("x,y\n1,nan\n", "not a finite number");
  bad("x,y\n", "no data rows");
  bad("", "empty file");
  bad("x,y\n1,0\n", "no column named 'z'", "z");
  expect_one_line_naming(error_of([&] { CsvDataset::load(dir / "missing.csv"); }),
                         dir / "missing.csv", "cannot open");
}

namespace {
ImageDataset counting_dataset(int n) {
  std::vector<std::uint8_t> img(static_cast<std::size_t>(n)), lab(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    img[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i);
    lab[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(i % 10);
  }
  // mean 0, std 1/255 makes the float value equal the byte, i.e. the sample index.
  return ImageDataset({n, 1, 1}, img, lab, 10, 0.0f, 1.0f / 255.0f);
}
std::vector<int> epoch_indices(DataLoader& dl) {
  std::vector<int> seen;
  for (std::int64_t b = 0; b < dl.num_batches(); ++b) {
    Batch batch = dl.batch(b);
    for (std::int64_t i = 0; i < batch.size(); ++i) {
      int v = static_cast<int>(std::lround(batch.x.data<float>()[i]));
      EXPECT_EQ(batch.y.data<std::int32_t>()[i], v % 10);
      seen.push_back(v);
    }
  }
  return seen;
}
}  // namespace

TEST(DataLoader, BatchesCoverEveryoneOnceAndDropLast) {
  auto ds = counting_dataset(103);
  DataLoader dl(ds, {.batch_size = 10, .shuffle = true, .drop_last = false, .seed = 7});
  EXPECT_EQ(dl.num_batches(), 11);
  EXPECT_EQ(dl.batch(10).size(), 3);
  EXPECT_EQ(dl.batch(0).x.shape(), (Shape{10, 1, 1, 1}));
  auto seen = epoch_indices(dl);
  std::set<int> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), 103u);
  std::vector<int> sorted(103);
  std::iota(sorted.begin(), sorted.end(), 0);
  EXPECT_NE(seen, sorted) << "shuffle left the order unchanged";
  DataLoader dropping(ds, {.batch_size = 10, .shuffle = true, .drop_last = true, .seed = 7});
  EXPECT_EQ(dropping.num_batches(), 10);
  EXPECT_EQ(epoch_indices(dropping).size(), 100u);
  EXPECT_THROW(dl.batch(11), Error);
}

TEST(DataLoader, OrderDependsOnlyOnSeedAndEpoch) {
  auto ds = counting_dataset(50);
  DataLoader a(ds, {.batch_size = 8, .shuffle = true, .drop_last = false, .seed = 1});
  DataLoader b(ds, {.batch_size = 8, .shuffle = true, .drop_last = false, .seed = 1});
  DataLoader c(ds, {.batch_size = 8, .shuffle = true, .drop_last = false, .seed = 2});
  a.set_epoch(3);
  b.set_epoch(0);
  b.set_epoch(1);
  b.set_epoch(3);  // jumping straight to an epoch (as a resume does) gives the same order
  EXPECT_EQ(a.order(), b.order());
  c.set_epoch(3);
  EXPECT_NE(a.order(), c.order());
  auto e3 = a.order();
  a.set_epoch(4);
  EXPECT_NE(a.order(), e3);
  EXPECT_EQ(a.order(), shuffled_order(50, 1, 4));
}

TEST(DataLoader, NoShuffleKeepsOrderAndRejectsBadBatchSize) {
  auto ds = counting_dataset(5);
  DataLoader dl(ds, {.batch_size = 2, .shuffle = false, .drop_last = false, .seed = 0});
  EXPECT_EQ(epoch_indices(dl), (std::vector<int>{0, 1, 2, 3, 4}));
  EXPECT_THROW(DataLoader(ds, {.batch_size = 0}), UsageError);
  EXPECT_THROW(DataLoader(ds, {.batch_size = -3}), UsageError);
}

}  // namespace verdant::data
