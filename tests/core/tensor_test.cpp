#include "verdant/core/tensor.hpp"

#include <gtest/gtest.h>

#include <cstdint>

#include "verdant/core/error.hpp"

namespace verdant {

TEST(Tensor, StorageIs64ByteAligned) {
  for (std::int64_t n : {1, 3, 17, 1000}) {
    Tensor t({n}, DType::f32);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(t.raw()) % 64, 0u);
  }
}

TEST(Tensor, ZerosAndFromHoldValues) {
  Tensor z = Tensor::zeros({2, 3});
  for (int i = 0; i < 6; ++i) EXPECT_EQ(z.at(i), 0.0f);
  Tensor t = Tensor::from({2, 2}, {1, 2, 3, 4});
  EXPECT_EQ(t.at(3), 4.0f);
  EXPECT_THROW(Tensor::from({2, 2}, {1, 2, 3}), Error);
}

TEST(Tensor, ReshapeSharesStorageAndInfersOneDimension) {
  Tensor t = Tensor::from({2, 3}, {1, 2, 3, 4, 5, 6});
  Tensor r = t.reshape({-1, 2});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_TRUE(r.same_storage(t));
  EXPECT_THROW(t.reshape({4, -1}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
}

TEST(Tensor, CloneIsDeep) {
  Tensor t = Tensor::from({2}, {1, 2});
  Tensor c = t.clone();
  c.data<float>()[0] = 9;
  EXPECT_EQ(t.at(0), 1.0f);
}

TEST(Tensor, WrongTypedAccessThrows) {
  Tensor t({4}, DType::i8);
  EXPECT_THROW(t.data<float>(), Error);
  EXPECT_NO_THROW(t.data<std::int8_t>());
}

}  // namespace verdant
