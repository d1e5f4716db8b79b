// Builds the mlp through the installed package and checks its parameter count.
#include <cstdio>

#include "verdant/nn/models.hpp"

int main() {
  auto model = verdant::nn::make_model("mlp");
  long long n = 0;
  for (auto& p : model->parameters()) n += p.numel();
  std::printf("mlp parameters: %lld\n", n);
  return n == 266610 ? 0 : 1;
}
