// Writes a small Fashion-MNIST-shaped IDX folder for the script tests (report, mpi).
#include <cstdio>
#include <cstdlib>

#include "train/test_util.hpp"

int main(int argc, char** argv) {
  if (argc != 2 && argc != 4) {
    std::fprintf(stderr, "usage: make_fake_data DIR [TRAIN TEST]\n");
    return 2;
  }
  const int train = argc == 4 ? std::atoi(argv[2]) : 256,
            test = argc == 4 ? std::atoi(argv[3]) : 64;
  verdant::test::write_fake_fashion_mnist(argv[1], train, test);
  return 0;
}
