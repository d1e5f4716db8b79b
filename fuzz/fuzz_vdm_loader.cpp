// libFuzzer target for the .vdm loader. The CRC is patched to match before loading, so the
// fuzzer explores the structural validation behind the checksum as well as the checksum
// itself (odd first byte: keep the fuzzer's CRC). Files that load are run once.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "verdant/runtime/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> file(data, data + size);
  if (size >= sizeof(verdant::vdm::FileHeader) && (size % 2 == 0)) {
    const std::uint32_t crc = verdant::vdm::file_crc32(file.data(), file.size());
    std::memcpy(file.data() + offsetof(verdant::vdm::FileHeader, crc32), &crc, 4);
  }
  std::string error;
  auto model = verdant::runtime::Model::load_buffer(file.data(), file.size(), &error);
  if (!model) return 0;
  // Valid but huge models are legal; running them would only slow the fuzzer down.
  if (model->input_size() > (1u << 16) || model->macs() > (1u << 24)) return 0;
  std::vector<float> in(model->input_size(), 0.5f), out(model->output_size());
  model->run(in.data(), in.size(), out.data(), out.size());
  return 0;
}
