// libFuzzer target for the .vckpt checkpoint loader and the model it rebuilds. The declared
// size and the CRC are patched to match before decoding (even-sized inputs; odd ones keep the
// fuzzer's), so the structural checks behind them are explored too.
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "verdant/core/error.hpp"
#include "verdant/train/checkpoint.hpp"
#include "verdant/train/model_source.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace verdant;
  std::vector<std::uint8_t> file(data, data + size);
  constexpr std::size_t kHeader = 8 + 4 + 4 + 8;  // magic, version, flags, file size
  if (size >= kHeader + 4 && size % 2 == 0) {
    const std::uint64_t declared = size;
    std::memcpy(file.data() + 16, &declared, 8);
    const auto crc =
        static_cast<std::uint32_t>(crc32(0L, file.data(), static_cast<uInt>(size - 4)));
    std::memcpy(file.data() + size - 4, &crc, 4);
  }
  try {
    const train::Checkpoint ckpt = train::decode_checkpoint(file, "fuzz.vckpt");
    train::model_from_checkpoint(ckpt, "fuzz.vckpt");
  } catch (const Error&) {
    // A refused file is the expected outcome; anything else escaping is a finding.
  }
  return 0;
}
