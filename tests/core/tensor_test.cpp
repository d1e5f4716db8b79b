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

TEST(Tensor, ShapeWhoseSizeOverflowsIsRefused) {
  EXPECT_EQ(shape_numel({1 << 20, 1 << 20, 1 << 22}), std::int64_t{1} << 62);
  try {
    shape_numel({std::int64_t{1} << 33, (std::int64_t{1} << 31) + 1});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("more elements than fit in 64 bits"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(Tensor({std::int64_t{1} << 40, std::int64_t{1} << 40}, DType::f32), Error);
}

TEST(Tensor, WrongTypedAccessThrows) {
  Tensor t({4}, DType::i8);
  EXPECT_THROW(t.data<float>(), Error);
  EXPECT_NO_THROW(t.data<std::int8_t>());
}

}  // namespace verdant
