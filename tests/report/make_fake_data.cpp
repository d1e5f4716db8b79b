// Writes a small Fashion-MNIST-shaped IDX folder for the report test.
#include <cstdio>

#include "train/test_util.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_fake_data DIR\n");
    return 2;
  }
  verdant::test::write_fake_fashion_mnist(argv[1], 256, 64);
  return 0;
}
