// The user's own data: CSV (headers regular, irregular or absent, other delimiters, class
// names, gzip), NumPy .npy and .npz in every supported dtype, IDX of any shape, and the split
// that load_split makes of them; every bad file is one line naming the file and what is wrong.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zip.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>

#include "../../src/data/compressed.hpp"
#include "support/error_helpers.hpp"
#include "support/npy_writer.hpp"
#include "verdant/core/io.hpp"
#include "verdant/data/dataset.hpp"
#include "verdant/data/idx.hpp"
#include "verdant/data/npy.hpp"
#include "verdant/data/split.hpp"

namespace verdant::data {
namespace {

namespace fs = std::filesystem;
using test_support::contains;
using test_support::error_of;
using test_support::npy_bytes;
using test_support::write_npy;

class Dir {
 public:
  Dir() {
    path_ = fs::temp_directory_path() /
            ("verdant_formats_" + std::to_string(::getpid()) + "_" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~Dir() { fs::remove_all(path_); }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// An .npz with the given entries (name -> .npy bytes), stored as np.savez does.
void write_npz(const fs::path& path,
               const std::vector<std::pair<std::string, std::vector<std::uint8_t>>>& entries) {
  int err = 0;
  zip_t* z = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(z, nullptr);
  for (const auto& [name, bytes] : entries) {
    zip_source_t* src = zip_source_buffer(z, bytes.data(), bytes.size(), 0);
    ASSERT_GE(zip_file_add(z, (name + ".npy").c_str(), src, ZIP_FL_OVERWRITE), 0);
  }
  ASSERT_EQ(zip_close(z), 0);
}

TEST(CsvFormats, HeadersDelimitersAndClassNames) {
  Dir dir;
  // scikit-learn's irregular first line (n_samples, n_features, class names) is skipped.
  write_file_atomic(dir / "sk.csv", "4,2,a,b\n1,2,0\n3,4,1\n5,6,1\n7,8,0\n");
  auto sk = CsvDataset::load(dir / "sk.csv", CsvOptions{});
  EXPECT_EQ(sk.size(), 4);
  EXPECT_EQ(sk.sample_shape(), (Shape{2}));
  EXPECT_EQ(sk.num_classes(), 2);
  EXPECT_EQ(sk.label(1), 1);

  // No header, semicolons, the label first by index, class names mapped in sorted order.
  write_file_atomic(dir / "named.csv", "dog;1.5;2\ncat;3;4\nbird;5;6\ncat;7;8\n");
  CsvOptions o{.delimiter = ';', .header = CsvOptions::Header::no, .label_column = "0"};
  auto named = CsvDataset::load(dir / "named.csv", o);
  EXPECT_EQ(named.class_names(), (std::vector<std::string>{"bird", "cat", "dog"}));
  EXPECT_EQ(named.label(0), 2);
  EXPECT_EQ(named.label(3), 1);
  std::vector<float> x(2);
  std::int32_t y = 0;
  std::int64_t i = 0;
  named.fill({&i, 1}, x.data(), &y);
  EXPECT_EQ(x, (std::vector<float>{1.5f, 2.f}));
  // The same names given (a model's classes) keep their order; an unknown one is an error.
  o.classes = {"dog", "cat", "bird"};
  EXPECT_EQ(CsvDataset::load(dir / "named.csv", o).label(0), 0);
  o.classes = {"dog", "cat"};
  EXPECT_TRUE(contains(error_of([&] { CsvDataset::load(dir / "named.csv", o); }),
                       "label 'bird' is not one of the model's classes"));

  // gzip, detected from the bytes.
  const std::string text = "x,y,label\n1,2,0\n3,4,1\n";
  const auto gz = gzip_bytes({reinterpret_cast<const std::uint8_t*>(text.data()), text.size()});
  write_file_atomic(dir / "z.csv.gz", gz);
  EXPECT_EQ(CsvDataset::load(dir / "z.csv.gz", CsvOptions{}).feature_names(),
            (std::vector<std::string>{"x", "y"}));
}

TEST(CsvFormats, BadFilesNameFileLineAndColumn) {
  Dir dir;
  auto bad = [&](const std::string& text, const std::string& what, CsvOptions o = {}) {
    write_file_atomic(dir / "b.csv", text);
    const std::string msg = error_of([&] { CsvDataset::load(dir / "b.csv", o); });
    EXPECT_TRUE(contains(msg, (dir / "b.csv").string())) << msg;
    EXPECT_TRUE(contains(msg, what)) << msg;
  };
  bad("a,b,c\n1,2,0\n1,2\n", "b.csv:3: expected 3 fields, found 2");
  bad("a,b,c\n1,2,0\n1,x,1\n", "b.csv:3:2: column 'b': 'x' is not a finite number");
  bad("a,b,c\n1,2,0\n", "no column named 'nope'", {.label_column = "nope"});
  bad("a,b,c\n1,2,0\n", "no column named '7'", {.label_column = "7"});
}

TEST(NpyFormats, EveryDtypeReadsAsFloats) {
  Dir dir;
  write_npy<std::uint8_t>(dir / "u8.npy", "|u1", {2, 3}, {0, 1, 2, 253, 254, 255});
  write_npy<std::int64_t>(dir / "i8.npy", "<i8", {2, 3}, {-3, 0, 7, 1LL << 40, 5, 6});
  write_npy<float>(dir / "f4.npy", "<f4", {2, 3}, {0.5f, -1.f, 2.f, 3.f, 4.f, 5.f});
  write_npy<double>(dir / "f8.npy", "<f8", {2, 3}, {0.25, -1, 2, 3, 4, 1e10});
  const NpyArray u8 = read_npy(dir / "u8.npy");
  EXPECT_EQ(u8.type(), NpyType::u8);
  EXPECT_EQ(u8.shape(), (std::vector<std::int64_t>{2, 3}));
  EXPECT_EQ(u8.at(5), 255.f);
  EXPECT_EQ(read_npy(dir / "i8.npy").at(3), static_cast<float>(1LL << 40));
  EXPECT_EQ(read_npy(dir / "f4.npy").at(1), -1.f);
  EXPECT_EQ(read_npy(dir / "f8.npy").at(5), 1e10f);

  // An ArrayDataset: uint8 becomes v / 255, the labels any integer type.
  write_npy<std::int64_t>(dir / "y.npy", "<i8", {2}, {1, 0});
  ArrayDataset ds(read_npy(dir / "u8.npy"), read_npy(dir / "y.npy"), "u8.npy");
  EXPECT_EQ(ds.sample_shape(), (Shape{3}));
  EXPECT_EQ(ds.num_classes(), 2);
  std::vector<float> x(3);
  std::int32_t y = -1;
  std::int64_t i = 1;
  ds.fill({&i, 1}, x.data(), &y);
  EXPECT_FLOAT_EQ(x[2], 1.f);
  EXPECT_EQ(y, 0);

  // The same arrays in an .npz.
  write_npz(dir / "d.npz",
            {{"x", npy_bytes("<f4", {2, 3}, std::vector<float>(6, 1.f).data(), 24)},
             {"y", npy_bytes("<i8", {2}, std::vector<std::int64_t>{0, 1}.data(), 16)}});
  EXPECT_EQ(read_npz(dir / "d.npz", "x").count(), 6);
  EXPECT_EQ(npz_names(dir / "d.npz"), (std::vector<std::string>{"x", "y"}));
  EXPECT_TRUE(contains(error_of([&] { read_npz(dir / "d.npz", "images"); }),
                       "no array 'images' in the archive (it holds: x, y)"));
}

TEST(NpyFormats, BadFilesAreOneLineNamingTheFile) {
  Dir dir;
  auto bad = [&](const std::vector<std::uint8_t>& bytes, const std::string& what) {
    write_file_atomic(dir / "b.npy", bytes);
    const std::string msg = error_of([&] { read_npy(dir / "b.npy"); });
    EXPECT_TRUE(contains(msg, (dir / "b.npy").string())) << msg;
    EXPECT_TRUE(contains(msg, what)) << msg;
  };
  const std::vector<float> v(6, 1.f);
  bad(npy_bytes("<i2", {6}, v.data(), 12), "dtype '<i2' is not supported");
  bad(npy_bytes(">f4", {6}, v.data(), 24), "dtype '>f4' is not supported");
  bad(npy_bytes("<f4", {2, 3}, v.data(), 24, true), "Fortran order");
  auto cut = npy_bytes("<f4", {2, 3}, v.data(), 24);
  cut.resize(cut.size() - 4);
  bad(cut, "(truncated)");
  bad({'n', 'o', 't', ' ', 'n', 'p', 'y', '!', '!', '!', '!'}, "not a .npy file");
  auto header = npy_bytes("<f4", {2, 3}, v.data(), 24);
  header.resize(20);
  bad(header, "truncated .npy header");
  write_file_atomic(dir / "empty.npy", "");
  EXPECT_TRUE(contains(error_of([&] { read_npy(dir / "empty.npy"); }), "empty file"));

  // Features and labels of different lengths; labels that are not classes.
  write_npy<float>(dir / "x.npy", "<f4", {2, 3}, v);
  write_npy<std::int64_t>(dir / "y3.npy", "<i8", {3}, {0, 1, 2});
  write_npy<float>(dir / "yf.npy", "<f4", {2}, {0.5f, 1.f});
  EXPECT_TRUE(contains(
      error_of([&] { ArrayDataset(read_npy(dir / "x.npy"), read_npy(dir / "y3.npy"), "x.npy"); }),
      "x.npy: 2 samples but the labels have shape [3]"));
  EXPECT_TRUE(contains(
      error_of([&] { ArrayDataset(read_npy(dir / "x.npy"), read_npy(dir / "yf.npy"), "x.npy"); }),
      "not a non-negative integer class"));
}

// Found by fuzz_npy_reader: an entry whose header declares gigabytes was allocated before a
// byte was read.
TEST(NpyFormats, NpzEntryDeclaringMoreThanItsBytesHoldIsRefusedBeforeAllocating) {
  Dir dir;
  const std::vector<float> v(6, 1.f);
  write_npz(dir / "a.npz", {{"x", npy_bytes("<f4", {6}, v.data(), 24)}});
  std::vector<std::uint8_t> zip = read_file_bytes(dir / "a.npz");
  // Uncompressed size: offset 22 of the local header, 24 of the central directory's.
  auto patch = [&](const char* signature, std::size_t offset) {
    const std::string text(zip.begin(), zip.end());
    const std::size_t at = text.find(signature);
    ASSERT_NE(at, std::string::npos);
    const std::uint32_t huge = 0xFFFFFF00u;
    std::memcpy(zip.data() + at + offset, &huge, sizeof huge);
  };
  patch("PK\x03\x04", 22);
  patch("PK\x01\x02", 24);
  write_file_atomic(dir / "a.npz", zip);
  const std::string msg = error_of([&] { read_npz(dir / "a.npz", "x"); });
  EXPECT_TRUE(contains(msg, (dir / "a.npz").string() + ":x.npy: the entry declares 4294967040 "
                                                       "bytes"))
      << msg;
}

TEST(LoadSplit, HeldOutFractionIsDisjointSeededAndNormalizedByTheTrainingPart) {
  Dir dir;
  std::string text = "f0,f1,label\n";
  for (int i = 0; i < 100; ++i)
    text += std::to_string(i) + "," + std::to_string(1000 + 10 * i) + "," + std::to_string(i % 3) +
            "\n";
  write_file_atomic(dir / "t.csv", text);
  DataOptions o{.location = dir / "t.csv", .test_fraction = 0.25, .split_seed = 3};
  const DataSplit s = load_split(o);
  ASSERT_EQ(s.train->size(), 75);
  ASSERT_EQ(s.test->size(), 25);
  EXPECT_EQ(s.num_classes, 3);
  EXPECT_FALSE(s.pixels);
  ASSERT_EQ(s.normalization.mean.size(), 2u);
  // Every sample is in exactly one part: recover f0 through the normalization.
  std::set<int> seen;
  for (const auto* part : {s.train.get(), s.test.get()})
    for (std::int64_t i = 0; i < part->size(); ++i) {
      float x[2];
      std::int32_t y;
      part->fill({&i, 1}, x, &y);
      const int f0 =
          static_cast<int>(std::lround(x[0] * s.normalization.std[0] + s.normalization.mean[0]));
      EXPECT_EQ(y, f0 % 3);
      EXPECT_TRUE(seen.insert(f0).second) << f0 << " is in both parts";
    }
  EXPECT_EQ(seen.size(), 100u);
  // The training part's features are standardized.
  EXPECT_NEAR(fit_normalization(*s.train, true).mean[1], 0.0, 1e-3);
  EXPECT_NEAR(fit_normalization(*s.train, true).std[1], 1.0, 1e-3);
  // The same seed gives the same split; another seed another.
  auto first_test_f0 = [&](std::uint64_t seed) {
    DataOptions p = o;
    p.split_seed = seed;
    const DataSplit t = load_split(p);
    float x[2];
    std::int32_t y;
    std::int64_t i = 0;
    t.test->fill({&i, 1}, x, &y);
    return std::lround(x[0] * t.normalization.std[0] + t.normalization.mean[0]);
  };
  EXPECT_EQ(first_test_f0(3), first_test_f0(3));
  EXPECT_NE(first_test_f0(3), first_test_f0(4));
  // --shape sees the 2 features as 1x1x2; one that does not hold them is a SettingError.
  o.shape = {1, 1, 2};
  EXPECT_EQ(load_split(o).sample_shape, (Shape{1, 1, 2}));
  o.shape = {1, 2, 2};
  EXPECT_THROW(load_split(o), SettingError);
}

TEST(LoadSplit, NumpyAndIdxFilesOfAnyShape) {
  Dir dir;
  // 10 RGB 4x4 images as uint8, their labels, and a test part in its own files.
  std::vector<std::uint8_t> pixels(10 * 3 * 4 * 4);
  for (std::size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<std::uint8_t>(i * 7);
  std::vector<std::int64_t> labels = {0, 1, 2, 3, 0, 1, 2, 3, 0, 1};
  write_npy(dir / "x.npy", "|u1", {10, 3, 4, 4}, pixels);
  write_npy(dir / "y.npy", "<i8", {10}, labels);
  const DataSplit s = load_split({.location = dir / "x.npy",
                                  .labels = dir / "y.npy",
                                  .test_location = dir / "x.npy",
                                  .test_labels = dir / "y.npy"});
  EXPECT_EQ(s.sample_shape, (Shape{3, 4, 4}));
  EXPECT_EQ(s.num_classes, 4);
  EXPECT_TRUE(s.pixels);
  EXPECT_EQ(s.normalization.mean.size(), 1u);  // images: one pair
  EXPECT_EQ(s.train->size(), 10);
  EXPECT_TRUE(
      contains(error_of([&] { load_split({.location = dir / "x.npy"}); }), "labels is needed"));

  // An IDX image file of 5x7 images with its label file.
  IdxArray img{{6, 5, 7}, std::vector<std::uint8_t>(6 * 35, 9)}, lab{{6}, {0, 1, 0, 1, 0, 1}};
  write_idx(dir / "i-ubyte", img, false);
  write_idx(dir / "l-ubyte", lab, true);
  const DataSplit idx =
      load_split({.location = dir / "i-ubyte", .labels = dir / "l-ubyte", .test_fraction = 0.5});
  EXPECT_EQ(idx.sample_shape, (Shape{1, 5, 7}));
  EXPECT_EQ(idx.test->size(), 3);
  EXPECT_TRUE(
      contains(error_of([&] { load_split({.location = dir / "what.parquet"}); }), "what.parquet"));
}

}  // namespace
}  // namespace verdant::data
