// verdant-edge end to end: runs the real executable on files written here.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>

#include <zlib.h>

#include "test_models.hpp"
#include "verdant/runtime/kernels.hpp"

namespace verdant::runtime {
namespace {

namespace fs = std::filesystem;

struct Result {
  int code = 0;
  std::string out;
};

// Runs verdant-edge with `env` (VAR=value ..., or empty) set for it alone.
Result run_with_env(const std::string& env, const std::string& args) {
  const std::string cmd = env + " " + std::string(VERDANT_EDGE_EXE) + " " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  std::size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

Result run(const std::string& args) {
  return run_with_env("", args);
}

class EdgeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("verdant_edge_test_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  void write(const std::string& name, const std::vector<std::uint8_t>& bytes) const {
    std::ofstream(path(name), std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  }
  fs::path dir_;
};

// 2x3x3 "images" of bytes: model conv 2->3 k2 + maxpool -> flatten -> linear 3 -> 4.
ModelSpec image_model(vdm::Encoding enc) {
  ModelSpec m;
  m.input_c = 2;
  m.input_h = 3;
  m.input_w = 3;
  m.layers.push_back(testing::conv(2, 3, 2, 1, 0, vdm::Pool::max, 3));
  m.layers.push_back(testing::flatten());
  m.layers.push_back(testing::linear(3, 4, false, 5));
  std::vector<std::vector<float>> cal;
  for (int i = 0; i < 8; ++i) cal.push_back(testing::random_vec(18, 0.f, 1.f, 50 + i));
  testing::calibrate(m, cal);
  testing::set_encoding(m, enc);
  return m;
}

std::vector<std::uint8_t> idx_images(std::size_t n, std::size_t c, std::size_t h, std::size_t w,
                                     std::vector<std::uint8_t>* pixels) {
  std::vector<std::uint8_t> f = {0, 0, 8, 4};
  for (std::size_t d : {n, c, h, w})
    for (int s = 24; s >= 0; s -= 8) f.push_back(static_cast<std::uint8_t>(d >> s));
  std::mt19937 g(7);
  for (std::size_t i = 0; i < n * c * h * w; ++i) {
    const auto v = static_cast<std::uint8_t>(g() & 0xFF);
    f.push_back(v);
    pixels->push_back(v);
  }
  return f;
}

std::vector<std::uint8_t> idx_labels(const std::vector<int>& labels) {
  std::vector<std::uint8_t> f = {0, 0, 8, 1};
  for (int s = 24; s >= 0; s -= 8) f.push_back(static_cast<std::uint8_t>(labels.size() >> s));
  for (int l : labels) f.push_back(static_cast<std::uint8_t>(l));
  return f;
}

TEST_F(EdgeCli, RunIdxPrintsPredictionsAccuracyLatencyEnergy) {
  std::string err;
  ModelSpec spec = image_model(vdm::Encoding::int8);
  write("m.vdm", write_vdm(spec, &err));
  std::vector<std::uint8_t> px;
  write("x.idx", idx_images(5, 2, 3, 3, &px));
  // Expected predictions from the library itself on the same normalised pixels.
  auto m = Model::load_file(path("m.vdm"), &err);
  std::vector<int> expect;
  for (int i = 0; i < 5; ++i) {
    std::vector<float> in(18);
    for (int j = 0; j < 18; ++j) in[j] = px[i * 18 + j] / 255.f;
    expect.push_back(m->predict(in.data(), in.size()));
  }
  write("y.idx", idx_labels(expect));
  Result r =
      run("run " + path("m.vdm") + " --input " + path("x.idx") + " --labels " + path("y.idx"));
  ASSERT_EQ(r.code, 0) << r.out;
  std::string preds = "predictions:";
  for (int p : expect) preds += " " + std::to_string(p);
  EXPECT_NE(r.out.find(preds + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("accuracy: 100.00% (5 / 5)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("latency per inference: median"), std::string::npos);
  EXPECT_NE(r.out.find("energy per 1,000 inferences"), std::string::npos);
  EXPECT_NE(r.out.find("estimated"), std::string::npos);
}

// Inputs stream in chunks of 64: 150 gzip'd images cross chunk borders, --repeat rewinds,
// --limit stops early, and a file shorter than its header says fails with one error.
TEST_F(EdgeCli, RunStreamsLongGzipInputs) {
  std::string err;
  ModelSpec spec = image_model(vdm::Encoding::int8);
  write("m.vdm", write_vdm(spec, &err));
  std::vector<std::uint8_t> px;
  const auto file = idx_images(150, 2, 3, 3, &px);
  gzFile gz = gzopen(path("x.idx.gz").c_str(), "wb");
  ASSERT_NE(gz, nullptr);
  ASSERT_EQ(gzwrite(gz, file.data(), static_cast<unsigned>(file.size())), int(file.size()));
  gzclose(gz);
  auto m = Model::load_file(path("m.vdm"), &err);
  std::vector<int> expect;
  for (int i = 0; i < 150; ++i) {
    std::vector<float> in(18);
    for (int j = 0; j < 18; ++j) in[j] = px[i * 18 + j] / 255.f;
    expect.push_back(m->predict(in.data(), in.size()));
  }
  write("y.idx", idx_labels(expect));
  std::string preds = "predictions:";
  for (int p : expect) preds += " " + std::to_string(p);
  Result r = run("run " + path("m.vdm") + " --input " + path("x.idx.gz") + " --labels " +
                 path("y.idx") + " --repeat 2 --show 150");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find(preds + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("150 inputs x 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("accuracy: 100.00% (150 / 150)"), std::string::npos) << r.out;
  r = run("run " + path("m.vdm") + " --input " + path("x.idx.gz") + " --labels " + path("y.idx") +
          " --limit 70");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("accuracy: 100.00% (70 / 70)"), std::string::npos) << r.out;
  // Header promises 150 images, the data holds 100.
  write("short.idx", std::vector<std::uint8_t>(file.begin(), file.end() - 50 * 18));
  r = run("run " + path("m.vdm") + " --input " + path("short.idx"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("short.idx: truncated IDX data"), std::string::npos) << r.out;
}

TEST_F(EdgeCli, RunCsvWithLabelColumnAndRaw) {
  std::string err;
  write("m.vdm", write_vdm(image_model(vdm::Encoding::f32), &err));
  auto m = Model::load_file(path("m.vdm"), &err);
  const auto in = testing::random_vec(18, 0.f, 1.f, 3);
  const int p = m->predict(in.data(), in.size());
  std::ofstream csv(path("x.csv"));
  csv << "label";
  for (int j = 0; j < 18; ++j) csv << ",f" << j;
  csv << "\n" << p;
  for (float v : in) csv << "," << v;
  csv << "\n";
  csv.close();
  Result r = run("run " + path("m.vdm") + " --input " + path("x.csv"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("predictions: " + std::to_string(p) + "\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("accuracy: 100.00%"), std::string::npos) << r.out;
  write("x.f32", std::vector<std::uint8_t>(reinterpret_cast<const std::uint8_t*>(in.data()),
                                           reinterpret_cast<const std::uint8_t*>(in.data()) + 72));
  r = run("run " + path("m.vdm") + " --input " + path("x.f32"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("predictions: " + std::to_string(p) + "\n"), std::string::npos) << r.out;
}

TEST_F(EdgeCli, ShapeMismatchIsOneClearError) {
  std::string err;
  write("m.vdm", write_vdm(image_model(vdm::Encoding::int8), &err));
  std::vector<std::uint8_t> px;
  write("x.idx", idx_images(2, 1, 4, 4, &px));
  Result r = run("run " + path("m.vdm") + " --input " + path("x.idx"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out,
            "verdant-edge: error: " + path("x.idx") +
                ": sample shape 1x4x4 (16 values) does not match the model's input (18 values)\n");
  write("x.f32", std::vector<std::uint8_t>(20, 0));
  r = run("run " + path("m.vdm") + " --input " + path("x.f32"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find("not a whole number of 18-value inputs"), std::string::npos) << r.out;
}

TEST_F(EdgeCli, CorruptAndTruncatedModels) {
  std::string err;
  auto bytes = write_vdm(image_model(vdm::Encoding::int8), &err);
  auto corrupt = bytes;
  corrupt[corrupt.size() - 65] ^= 1;
  write("c.vdm", corrupt);
  auto truncated = bytes;
  truncated.resize(bytes.size() / 2);
  write("t.vdm", truncated);
  std::vector<std::uint8_t> px;
  write("x.idx", idx_images(1, 2, 3, 3, &px));
  Result r = run("run " + path("c.vdm") + " --input " + path("x.idx"));
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out.rfind("verdant-edge: error: " + path("c.vdm") + ": checksum mismatch", 0), 0u)
      << r.out;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
  r = run("run " + path("t.vdm") + " --input " + path("x.idx"));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.out.find(": truncated .vdm file"), std::string::npos) << r.out;
}

TEST_F(EdgeCli, UsageErrors) {
  Result r = run("run");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "verdant-edge: error: 'run' needs a MODEL.vdm\n");
  r = run("run m.vdm --bogus 1");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.out, "verdant-edge: error: unknown option --bogus for 'run'\n");
  r = run("run m.vdm --input x --repeat zero");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--repeat: 'zero' is not an integer"), std::string::npos);
  r = run("fly");
  EXPECT_EQ(r.code, 2);
}

TEST_F(EdgeCli, FinetuneLearnsANewHeadAndWritesAtomically) {
  // Features from a fixed int8 body; labels from a different "teacher" head on the same
  // features, so only retraining the head can fit them.
  ModelSpec spec;
  spec.input_w = 8;
  spec.layers.push_back(testing::flatten());
  spec.layers.push_back(testing::linear(8, 16, true, 1));
  spec.layers.push_back(testing::linear(16, 3, false, 2));
  std::vector<std::vector<float>> xs;
  for (int i = 0; i < 400; ++i) xs.push_back(testing::random_vec(8, -1.f, 1.f, 1000 + i));
  testing::calibrate(spec, xs);
  testing::set_encoding(spec, vdm::Encoding::int8);
  std::string err;
  write("m.vdm", write_vdm(spec, &err));
  ModelSpec teacher = spec;
  teacher.layers.back() = testing::linear(16, 3, false, 99);
  std::ofstream csv(path("d.csv"));
  for (const auto& x : xs) {
    const auto logits = testing::reference_forward(teacher, x);
    csv << (std::max_element(logits.begin(), logits.end()) - logits.begin());
    for (float v : x) csv << "," << v;
    csv << "\n";
  }
  csv.close();
  Result r = run("finetune " + path("m.vdm") + " --data " + path("d.csv") + " --out " +
                 path("new.vdm") + " --epochs 100 --lr 1");
  ASSERT_EQ(r.code, 0) << r.out;
  double before = 0, after = 0;
  const auto at = r.out.find("accuracy on held-out samples: ");
  ASSERT_NE(at, std::string::npos) << r.out;
  std::sscanf(r.out.c_str() + at, "accuracy on held-out samples: %lf%% before, %lf%% after",
              &before, &after);
  EXPECT_GT(after, before + 10) << r.out;
  EXPECT_GT(after, 80.0) << r.out;
  EXPECT_NE(r.out.find("transfer: head delta"), std::string::npos);
  auto m2 = Model::load_file(path("new.vdm"), &err);
  ASSERT_NE(m2, nullptr) << err;
  EXPECT_FALSE(fs::exists(path("new.vdm.tmp")));
  // Everything but the head is unchanged.
  auto m1 = Model::load_file(path("m.vdm"), &err);
  std::vector<float> f1(16), f2(16);
  m1->run_until(xs[0].data(), 8, 2, f1.data(), 16);
  m2->run_until(xs[0].data(), 8, 2, f2.data(), 16);
  EXPECT_EQ(f1, f2);
}

TEST_F(EdgeCli, Info) {
  std::string err;
  write("m.vdm", write_vdm(image_model(vdm::Encoding::int8_csr), &err));
  Result r = run("info " + path("m.vdm"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("conv2d  int8-csr 2x3x3 -> 3x1x1 relu maxpool"), std::string::npos) << r.out;
}

// VERDANT_RUNTIME_ISA forces any supported kernel table; a name it does not know gives the
// best table and one warning line.
TEST_F(EdgeCli, RuntimeIsaVariableChoosesTheKernels) {
  std::string err;
  write("m.vdm", write_vdm(image_model(vdm::Encoding::int8), &err));
  for (const KernelTable* t : supported_kernel_tables()) {
    Result r = run_with_env(std::string("VERDANT_RUNTIME_ISA=") + t->isa, "info " + path("m.vdm"));
    ASSERT_EQ(r.code, 0) << r.out;
    EXPECT_NE(r.out.find(std::string("kernels ") + t->isa + "\n"), std::string::npos) << r.out;
    EXPECT_EQ(r.out.find("VERDANT_RUNTIME_ISA"), std::string::npos) << r.out;
  }
  const std::string best = supported_kernel_tables().front()->isa;
  Result r = run_with_env("VERDANT_RUNTIME_ISA=avx9000", "info " + path("m.vdm"));
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("kernels " + best + "\n"), std::string::npos) << r.out;
  const std::string warning =
      "verdant runtime: VERDANT_RUNTIME_ISA=avx9000 is not a kernel table this build and CPU "
      "support (";
  ASSERT_EQ(r.out.rfind(warning, 0), 0u) << r.out;
  EXPECT_NE(r.out.find("); using " + best + "\nmodel "), std::string::npos) << r.out;
}

}  // namespace
}  // namespace verdant::runtime
