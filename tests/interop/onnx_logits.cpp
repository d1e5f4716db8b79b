// Test helper for the Python round-trip checks: runs a model (anything train::load_model takes:
// a built-in name, a checkpoint, an .onnx file) in eval mode on the first COUNT Fashion-MNIST
// test images and writes the logits as raw float32 [COUNT, classes] to OUT; prints the accuracy.
//   verdant_onnx_logits MODEL DATA_DIR COUNT OUT
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <numeric>
#include <vector>

#include "verdant/core/io.hpp"
#include "verdant/data/split.hpp"
#include "verdant/train/model_source.hpp"

int main(int argc, char** argv) {
  using namespace verdant;
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s MODEL DATA_DIR COUNT OUT\n", argv[0]);
    return 2;
  }
  try {
    auto loaded = train::load_model(argv[1]);
    nn::Sequential& model = *loaded.model;
    model.eval();
    const auto split = data::load_split({.location = argv[2], .limit_test = std::atoll(argv[3])},
                                        data::Parts::test);
    const data::Dataset& test = *split.test;
    train::check_model_fits(model, {split.sample_shape, split.num_classes}, argv[1],
                            split.description);
    Shape sample = test.sample_shape();
    const std::int64_t per = shape_numel(sample), n = test.size(), batch = 500;
    std::vector<float> logits;
    std::int64_t correct = 0;
    nn::NoGradGuard no_grad;
    for (std::int64_t b = 0; b < n; b += batch) {
      const std::int64_t m = std::min(batch, n - b);
      std::vector<std::int64_t> idx(static_cast<std::size_t>(m));
      std::iota(idx.begin(), idx.end(), b);
      Shape shape = sample;
      shape.insert(shape.begin(), m);
      Tensor x(shape, DType::f32);
      std::vector<std::int32_t> y(static_cast<std::size_t>(m));
      test.fill(idx, x.data<float>(), y.data());
      const nn::Variable out = model(nn::Variable(x));
      const std::int64_t classes = out.dim(1);
      const float* p = out.value().data<float>();
      logits.insert(logits.end(), p, p + m * classes);
      for (std::int64_t i = 0; i < m; ++i) {
        const float* row = p + i * classes;
        std::int64_t best = 0;
        for (std::int64_t c = 1; c < classes; ++c)
          if (row[c] > row[best]) best = c;
        correct += best == y[static_cast<std::size_t>(i)];
      }
    }
    const auto* bytes = reinterpret_cast<const std::uint8_t*>(logits.data());
    write_file_atomic(argv[4], std::span<const std::uint8_t>(bytes, logits.size() * sizeof(float)));
    std::printf("accuracy %.4f%% (%lld/%lld)\n", 100.0 * static_cast<double>(correct) / n,
                static_cast<long long>(correct), static_cast<long long>(n));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "verdant_onnx_logits: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
