// compare_runs A B TOLERANCE: the largest difference between two training runs' weights
// (checkpoint.vckpt params) and per-epoch training losses (results.json); exit 0 when both are
// within TOLERANCE, 1 otherwise, 2 on bad input.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "verdant/core/io.hpp"
#include "verdant/train/checkpoint.hpp"

int main(int argc, char** argv) {
  using namespace verdant;
  if (argc != 4) {
    std::fprintf(stderr, "usage: compare_runs A B TOLERANCE\n");
    return 2;
  }
  const std::string a = argv[1], b = argv[2];
  const double tol = std::atof(argv[3]);
  try {
    const auto x = train::load_checkpoint(a + "/checkpoint.vckpt");
    const auto y = train::load_checkpoint(b + "/checkpoint.vckpt");
    double weights = 0;
    std::size_t compared = 0;
    for (const auto& [name, t] : x.tensors) {
      if (name.rfind("param/", 0) != 0) continue;
      const Tensor* u = y.find_tensor(name);
      if (!u || u->numel() != t.numel()) {
        std::fprintf(stderr, "%s: missing or other shape in %s\n", name.c_str(), b.c_str());
        return 1;
      }
      for (std::int64_t i = 0; i < t.numel(); ++i)
        weights = std::max(weights, double(std::fabs(t.data<float>()[i] - u->data<float>()[i])));
      ++compared;
    }
    const auto jx = nlohmann::json::parse(read_file_text(a + "/results.json"));
    const auto jy = nlohmann::json::parse(read_file_text(b + "/results.json"));
    double loss = 0;
    if (jx["epochs"].size() != jy["epochs"].size()) {
      std::fprintf(stderr, "different numbers of epochs\n");
      return 1;
    }
    for (std::size_t e = 0; e < jx["epochs"].size(); ++e)
      loss = std::max(loss, std::fabs(jx["epochs"][e]["train_loss"].get<double>() -
                                      jy["epochs"][e]["train_loss"].get<double>()));
    std::printf(
        "%zu parameter tensors: max |weight difference| %.3g, max |epoch loss "
        "difference| %.3g (tolerance %g)\n",
        compared, weights, loss, tol);
    return weights <= tol && loss <= tol && compared > 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
}
